"""Random search without replacement: the suite's deduplicated random
baseline.

Uniform random search as the loop's `random` algorithm, except that a
walk whose architecture (the store's key of its decoded config) was
proposed before in this search is drawn again, up to `max_draws` (100)
draws per proposal (then the last draw is kept: a space smaller than the
budget runs out of new architectures, and an architecture that random
walks reach with a probability well below 1/100 is then rarely found: on
stack layers, deep stacks). A deduplicated baseline shows what a
searcher adds beyond refusing repeats (issue 29).

With `key` (a function of the config, e.g. NAS-Bench-Graph's path
features, `driver.Method.task_features`), two walks are the same
architecture when their keys are equal: random search that also refuses
an isomorphic twin, the advantage the predictor on those features has.
"""

from typing import Callable, Optional

from graph_nas.errors import GraphNasError
from graph_nas.search.algorithms import RandomSearch


class RandomWithoutReplacement(RandomSearch):
  """Uniform random walks, a repeated architecture redrawn.

  Args:
    space: the SearchSpace.
    seed: the random stream's seed.
    max_draws: draws per proposal before a repeat is accepted.
    key: config -> numbers naming the architecture (None: the store's key
      of the config).
  """

  name = "random_dedup"

  def __init__(self, space, seed: int = 0, *, max_draws: int = 100,
               key: Optional[Callable] = None):
    super().__init__(space, seed)
    self.no_repeats = True
    self.max_draws = int(max_draws)
    self.key = key

  def _key(self, walk) -> str:
    if self.key is None:
      return super()._key(walk)
    try:
      config = self.space.decode(walk)
    except GraphNasError:
      return super()._key(walk)
    return "key:" + repr(tuple(float(x) for x in self.key(config)))

  def propose(self, n):
    out = []
    for _ in range(n):
      for _ in range(self.max_draws):
        walk = self.space.sample_random(self.rng).actions
        if self._unseen(walk):
          break
      out.append(walk)
    return out
