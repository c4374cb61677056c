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

Needs Optuna (the `bench` extra). Its state is Optuna's study in memory:
`state()` is not supported (the suite does not checkpoint).
"""

import warnings
from typing import Dict, List

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
  """

  name = "tpe"

  def __init__(self, space, seed: int = 0, *, n_startup_trials: int = 10,
               multivariate: bool = True):
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
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      for _ in range(n):
        trial = self.study.ask()
        walk = self._walk(trial)
        self._pending.setdefault(walk, []).append(trial)
        out.append(walk)
    return out

  def update(self, walks, rewards):
    for walk, reward in zip(walks, np.asarray(rewards, np.float64)):
      trial = self._pending[tuple(walk)].pop(0)
      if np.isfinite(reward):
        self.study.tell(trial, float(reward))
      else:
        self.study.tell(trial, state=_optuna().trial.TrialState.FAIL)
    self.num_updates += 1
    return {}

  def state(self):
    raise GraphNasError("the TPE baseline keeps Optuna's study in memory "
                        "and is not checkpointed")
