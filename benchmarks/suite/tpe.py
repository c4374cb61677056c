"""Optuna's TPE over a graph space, behind graph_nas' Algorithm interface.

What an Optuna user would write for a graph space, define-by-run: walk the
graph from its start and, at every visited vertex with two actions or
more, ask the trial for the action: ``suggest_int`` over the action indices
where the vertex's actions are numbers in increasing order (an int_range:
TPE then models their order, as a user's ``suggest_int("p1", 1, 100)``
would), else ``suggest_categorical``. The k-th visit of vertex v (a loop)
is its own parameter ``v@k``, so conditional and repeated decisions are
TPE's conditional parameters. Multivariate TPE (``multivariate=True,
group=True``) is the variant compared in NAS benchmarks.

Deduplicated (``dedup=True``, the suite's ``tpe_dedup``): a proposal whose
architecture (the store's key of its decoded config) was evaluated before
in this search is answered at once with the stored reward (told to the
study, so TPE learns from it) and not counted: TPE is asked again, up to
`max_asks` times per proposal (then the repeat is kept and counts, as in
the loop). A proposal repeating another of the same batch waits for that
one's reward. This is what an Optuna user gets by looking the
architecture up in their own results before training it.

Needs Optuna (the `bench` extra). Its state is Optuna's study in memory:
`state()` is not supported (the suite does not checkpoint).
"""

import warnings
from typing import Dict

import numpy as np

from graph_nas.errors import GraphNasError
from graph_nas.search.algorithms import Algorithm
from graph_nas.search.evolution import ordered_numeric


def _optuna():
  try:
    import optuna  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise GraphNasError("the TPE baseline needs Optuna: pip install "
                        "\".[bench]\"") from None
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  return optuna


class OptunaTPE(Algorithm):
  """Multivariate TPE (Optuna) asking for each decision of a walk.

  Args:
    space: the SearchSpace.
    seed: the sampler's seed.
    n_startup_trials: random trials before TPE models (Optuna's default).
    multivariate: TPE over the joint of the parameters (group=True).
    dedup: answer repeats from the results so far, uncounted (module doc).
    max_asks: with dedup, asks per proposal before a repeat is kept.
  """

  name = "tpe"

  def __init__(self, space, seed: int = 0, *, n_startup_trials: int = 10,
               multivariate: bool = True, dedup: bool = False,
               max_asks: int = 20):
    super().__init__(space, seed)
    optuna = _optuna()
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")  # multivariate/group: experimental
      sampler = optuna.samplers.TPESampler(
          seed=seed, n_startup_trials=n_startup_trials,
          multivariate=multivariate, group=multivariate)
    self.study = optuna.create_study(direction="maximize", sampler=sampler)
    self._ordered = ordered_numeric(space)
    self._pending: Dict[tuple, list] = {}
    self.dedup, self.max_asks = bool(dedup), int(max_asks)
    self._known: Dict[str, float] = {}  # config key -> reward (dedup)
    self._waiting: Dict[str, list] = {}  # config key -> trials to tell
    self.answered = 0  # repeats answered from the results (dedup)

  def _walk(self, trial) -> tuple:
    space, cur, seen, actions = self.space, self.space.start, {}, []
    while not space.terminal[cur] and len(actions) < space.max_steps:
      n = int(space.num_actions[cur])
      k = seen.get(cur, 0)
      seen[cur] = k + 1
      name = f"{space.vertex_names[cur]}@{k}"
      if n == 1:
        a = 0
      elif self._ordered[cur]:
        a = trial.suggest_int(name, 0, n - 1)
      else:
        a = trial.suggest_categorical(name, list(range(n)))
      actions.append(int(a))
      cur = int(space.next_vertex[cur, a])
    return tuple(actions)

  def propose(self, n):
    out = []
    batch = set()
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      for _ in range(n):
        for ask in range(self.max_asks if self.dedup else 1):
          trial = self.study.ask()
          walk = self._walk(trial)
          if not self.dedup or ask == self.max_asks - 1:
            break
          key = self._key(walk)
          if key in self._known:  # answered from the results, uncounted
            self.study.tell(trial, self._known[key])
            self.answered += 1
          elif key in batch:  # told when the batch's one is
            self._waiting.setdefault(key, []).append(trial)
            self.answered += 1
          else:
            batch.add(key)
            break
        self._pending.setdefault(walk, []).append(trial)
        out.append(walk)
    return out

  def _tell(self, trial, reward):
    if np.isfinite(reward):
      self.study.tell(trial, float(reward))
    else:
      self.study.tell(trial, state=_optuna().trial.TrialState.FAIL)

  def update(self, walks, rewards):
    for walk, reward in zip(walks, np.asarray(rewards, np.float64)):
      self._tell(self._pending[tuple(walk)].pop(0), reward)
      if self.dedup:
        key = self._key(walk)
        if np.isfinite(reward) and not key.startswith("walk:"):
          self._known.setdefault(key, float(reward))
        for trial in self._waiting.pop(key, []):
          self._tell(trial, reward)
    self.num_updates += 1
    return {}

  def state(self):
    raise GraphNasError("the TPE baseline keeps Optuna's study in memory "
                        "and is not checkpointed")
