"""One search of a look-up reward, trial by trial, without a store.

The search loop (`graph_nas.search.Search`) stores every trial in SQLite
and checkpoints the algorithm after each update: right for children that
train for minutes, a cost that dominates a look-up reward. This driver
keeps what gives the loop's trials their meaning -- proposals of
`walks_per_update` walks, then one update with their rewards, and an
architecture evaluated before reusing its reward while counting as a
trial (`reuse_results`) -- so that best-after-k-trials here is what a user
of the loop gets after k trials (tests/test_bench.py compares the two).

A method is data: an algorithm name and its settings, the declared
defaults (`graph_nas.search.settings`) where it gives none.
"""

import dataclasses
import json
import time
from typing import Any, Dict, List, Optional

import numpy as np

from graph_nas.errors import GraphNasError
from graph_nas.search import algorithms
from graph_nas.search.settings import AlgorithmSettings, SearchSettings
# The loop's rule for "evaluated before" (graph_nas.search.store).
from graph_nas.search.store import config_key

_SEARCH = SearchSettings()


@dataclasses.dataclass(frozen=True)
class Method:
  """A searcher of the suite.

  Attributes:
    label: its name in tables and plots.
    algorithm: a graph_nas algorithm name, or "tpe" (graph_nas.bench.tpe).
    settings: AlgorithmSettings fields it sets (the rest: the declared
      defaults).
    walks_per_update: walks proposed per update (SearchSettings').
  """
  label: str
  algorithm: str
  settings: Dict[str, Any] = dataclasses.field(default_factory=dict)
  walks_per_update: int = _SEARCH.walks_per_update

  def make(self, space, seed: int):
    if self.algorithm == "tpe":
      from graph_nas.bench import tpe  # pylint: disable=import-outside-toplevel
      return tpe.OptunaTPE(space, seed, **self.settings)
    chosen = AlgorithmSettings(algorithm=self.algorithm,
                               **self.settings).check()
    return algorithms.make_algorithm(self.algorithm, space, seed=seed,
                                     **chosen.algorithm_kwargs())

  def to_json(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


@dataclasses.dataclass
class Trace:
  """The trials of one search, in trial order."""
  rewards: List[float]
  tests: Optional[List[float]]
  repeats: int  # trials that reused an earlier architecture's reward
  seconds: float


# (task name, method) -> an algorithm whose reset() restores everything:
# a process running many seeds traces a controller's steps once.
_REUSED: Dict[tuple, Any] = {}


def _algorithm(task, method: Method, seed: int):
  key = (task.name, json.dumps(method.to_json(), sort_keys=True))
  algo = _REUSED.get(key)
  if algo is not None:
    algo.reset(seed)
    return algo
  algo = method.make(task.space, seed)
  if algo.reusable:
    _REUSED[key] = algo
  return algo


def run(task, method: Method, seed: int, budget: int,
        failure_reward: float = _SEARCH.failure_reward) -> Trace:
  """Searches `task` with `method` for `budget` trials."""
  t0 = time.time()
  algo = _algorithm(task, method, seed)
  cache: Dict[str, tuple] = {}
  rewards: List[float] = []
  tests: List[float] = []
  repeats = 0
  while len(rewards) < budget:
    n = min(method.walks_per_update, budget - len(rewards))
    walks = algo.propose(n)
    got = []
    for walk in walks:
      try:
        config = task.space.decode(walk)
      except GraphNasError:
        got.append(failure_reward)
        rewards.append(failure_reward)
        tests.append(np.nan)
        continue
      key = config_key(config)
      if key in cache:
        repeats += 1
      else:
        cache[key] = (float(task.reward(config)),
                      float(task.test(config)) if task.test else np.nan)
      r, t = cache[key]
      got.append(r)
      rewards.append(r)
      tests.append(t)
    algo.update(walks, got)
  return Trace(rewards, tests if task.test else None, repeats,
               time.time() - t0)
