"""One search of a look-up reward, trial by trial, without a store.

The search loop (`graph_nas.search.Search`) stores every trial in SQLite
and checkpoints the algorithm after each update: right for children that
train for minutes, a cost that dominates a look-up reward. This driver
keeps what gives the loop's trials their meaning -- proposals of
`walks_per_update` walks, then one update with their rewards, and an
architecture evaluated before reusing its reward while counting as a
trial (`reuse_results`) -- so that best-after-k-trials here is what a user
of the loop gets after k trials (tests/test_bench.py compares the two).

Screening (`graph_nas.search.screening`) as the loop does it
(`Search._propose`): with a scorer and `candidates_per_trial` K > 1, once
the scorer is ready the algorithm proposes K candidates per trial to run,
the same `Screen.choose` picks (its random stream keyed by the batch's
first trial id, "known" = evaluated before), the algorithm forgets the
candidates screened out, and the scorer learns from the freshly evaluated
successful trials before the batch (tests/test_bench_screening.py
compares the two).

A method is data: an algorithm name and its settings, the declared
defaults (`graph_nas.search.settings`) where it gives none. Besides the
loop's algorithms: "tpe" (benchmarks.suite.tpe) and "random_dedup"
(benchmarks.suite.dedup), the suite's baselines.
"""

import dataclasses
import json
import time
from typing import Any, Dict, List, Optional

import numpy as np

from graph_nas.errors import GraphNasError
from graph_nas.search import algorithms, predictor, screening
from graph_nas.search.settings import AlgorithmSettings, SearchSettings
# The loop's rule for "evaluated before" (graph_nas.search.store).
from graph_nas.search.store import config_key

_SEARCH = SearchSettings()


@dataclasses.dataclass(frozen=True)
class Method:
  """A searcher of the suite.

  Attributes:
    label: its name in tables and plots.
    algorithm: a graph_nas algorithm name, or "tpe" (benchmarks.suite.tpe).
    settings: AlgorithmSettings fields it sets (the rest: the declared
      defaults).
    walks_per_update: walks proposed per update (SearchSettings').
    screen, candidates_per_trial, screen_explore, screen_min_trials,
      screen_neighbors: the screening (SearchSettings'; "none" unless a
      method says otherwise: the package's default is "auto", which
      search_quality's "default" resolves).
    kappa: the predictor's upper-confidence weight (None: the
      PredictorScorer's own); a suite-only knob, for tuning it.
    task_features: the predictor learns from the task's domain features
      (Task.features, e.g. NAS-Bench-Graph's paths) in place of the
      walk's, as api.search(screen_features=fn) does; "random_dedup" then
      refuses a walk whose features an earlier one had (an isomorphic
      twin). A task without features: nothing changes.
  """
  label: str
  algorithm: str
  settings: Dict[str, Any] = dataclasses.field(default_factory=dict)
  walks_per_update: int = _SEARCH.walks_per_update
  screen: str = "none"  # the suite's methods screen only where they say so
  candidates_per_trial: int = _SEARCH.candidates_per_trial
  screen_explore: float = _SEARCH.screen_explore
  screen_min_trials: int = _SEARCH.screen_min_trials
  screen_neighbors: int = _SEARCH.screen_neighbors
  kappa: Optional[float] = None
  task_features: bool = False

  def make(self, space, seed: int, features=None):
    if self.algorithm == "tpe":
      from benchmarks.suite import tpe  # pylint: disable=import-outside-toplevel
      return tpe.OptunaTPE(space, seed, **self.settings)
    if self.algorithm == "random_dedup":
      from benchmarks.suite import dedup  # pylint: disable=import-outside-toplevel
      key = features if self.task_features else None
      return dedup.RandomWithoutReplacement(space, seed, key=key,
                                            **self.settings)
    chosen = AlgorithmSettings(algorithm=self.algorithm,
                               **self.settings).check()
    return algorithms.make_algorithm(self.algorithm, space, seed=seed,
                                     **chosen.algorithm_kwargs())

  def make_screen(self, space, seed: int,
                  features=None) -> Optional[screening.Screen]:
    """A new Screen (and scorer) for one search, as the loop builds it
    from its settings; None: no screening. features: the task's
    (used with task_features)."""
    SearchSettings(screen=self.screen,
                   candidates_per_trial=self.candidates_per_trial,
                   screen_explore=self.screen_explore,
                   screen_min_trials=self.screen_min_trials,
                   screen_neighbors=self.screen_neighbors).check()
    if self.candidates_per_trial <= 1 or self.screen == "none":
      return None
    if self.screen == screening.PREDICTOR:
      kw = {} if self.kappa is None else {"kappa": self.kappa}
      if self.task_features and features is not None:
        kw["features"] = features
      scorer = predictor.PredictorScorer(
          space, seed=seed, min_trials=self.screen_min_trials, **kw)
    else:
      scorer = screening.make_scorer(self.screen, space, None, seed=seed,
                                     min_trials=self.screen_min_trials)
    return screening.Screen(scorer,
                            candidates_per_trial=self.candidates_per_trial,
                            explore=self.screen_explore, seed=seed,
                            neighbors=self.screen_neighbors)

  def to_json(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


@dataclasses.dataclass
class Trace:
  """The trials of one search, in trial order."""
  rewards: List[float]
  tests: Optional[List[float]]
  repeats: int  # trials that reused an earlier architecture's reward
  seconds: float
  screened: int = 0  # candidates screened out (never trials)


# (task name, method) -> an algorithm whose reset() restores everything:
# a process running many seeds traces a controller's steps once.
_REUSED: Dict[tuple, Any] = {}


def _algorithm(task, method: Method, seed: int):
  key = (task.name, json.dumps(method.to_json(), sort_keys=True))
  algo = _REUSED.get(key)
  if algo is not None:
    algo.reset(seed)
    return algo
  algo = method.make(task.space, seed, task.features)
  if algo.reusable:
    _REUSED[key] = algo
  return algo


def _propose(algo, screen, space, n: int, history: screening.History,
             first_id: int, cache: Dict[str, tuple]):
  """n walks to run and the candidates screened out: the loop's
  Search._propose without the store."""
  if screen is None or not screen.ready(history):
    return algo.propose(n), 0
  walks = algo.propose(n * screen.k)
  proposed = len(walks)
  walks += screen.local_candidates(space, history, first_id)
  configs = []
  for walk in walks:
    try:
      configs.append(space.decode(walk))
    except GraphNasError:
      configs.append(None)
  picks, _ = screen.choose(walks, configs, n, history, first_id,
                           known=lambda c: config_key(c) in cache)
  chosen = set(picks)
  algo.forget([w for i, w in enumerate(walks[:proposed]) if i not in chosen])
  algo.remember([walks[i] for i in picks if i >= proposed])
  return [walks[i] for i in picks], len(walks) - len(picks)


def run(task, method: Method, seed: int, budget: int,
        failure_reward: float = _SEARCH.failure_reward,
        scorer: Optional[screening.Scorer] = None) -> Trace:
  """Searches `task` with `method` for `budget` trials. scorer: screens in
  place of the method's own scorer, with the method's screening settings
  (benchmarks/screen_headroom.py: a scorer of known quality)."""
  t0 = time.time()
  algo = _algorithm(task, method, seed)
  screen = method.make_screen(task.space, seed, task.features)
  if scorer is not None:
    if screen is None:
      raise GraphNasError(f"method {method.label} does not screen: no "
                          "scorer to replace")
    screen.scorer = scorer
  history = screening.History()  # fresh successful evaluations, in order
  cache: Dict[str, tuple] = {}
  rewards: List[float] = []
  tests: List[float] = []
  repeats = screened = 0
  while len(rewards) < budget:
    n = min(method.walks_per_update, budget - len(rewards))
    walks, out = _propose(algo, screen, task.space, n, history,
                          len(rewards), cache)
    screened += out
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
        history.walks.append(tuple(walk))
        history.configs.append(config)
        history.rewards.append(cache[key][0])
      r, t = cache[key]
      got.append(r)
      rewards.append(r)
      tests.append(t)
    algo.update(walks, got)
  return Trace(rewards, tests if task.test else None, repeats,
               time.time() - t0, screened)
