"""Screening: cheap scores decide which proposals are evaluated.

Every architecture a search evaluates costs one child training. With
screening on (`candidates_per_trial` K > 1 and a `screen` scorer), the
algorithm proposes K candidates for each trial to run; a :class:`Scorer`
scores them cheaply (a predictor fit on the trials so far, a zero-cost
proxy of the untrained child, its parameter count, a user's function); the
best-scored are evaluated. The default, screen="auto", is the predictor
(K = 16) for the evolution searcher on a function scored once per trial,
and no screening for image children, a function in early stopping, or
the controllers (`evaluator_screen`, SearchSettings.resolved).
A share `screen_explore` of the picks is drawn
uniformly from the candidates instead, so a scorer that ranks badly cannot
trap the search. Candidates that do not decode (e.g. a walk cut by
max_steps) are never picked while a decodable one is left, and a
candidate repeating another of the same screening is dropped.

Every screening is recorded in the trial store's `screened` table (each
candidate with its score, chosen or not); screened-out candidates are
never trials. The algorithm learns from the evaluated walks only (for a
controller, those walks are off its sampling distribution: screening
tilts what it sees toward what the scorer likes, as in BANANAS-style
predictor-guided evolution). The evolution's and the controllers'
`no_repeats` memory forgets the candidates screened out
(`Algorithm.forget`), so they may be proposed again later.

Resume: the picks of a sync batch depend only on the candidates (the
algorithm's checkpointed state proposes the same ones), on the trials
stored before the batch (the predictor is fit on those) and on a random
stream seeded by (seed, the batch's first trial id): a resumed batch picks
what the interrupted one picked, and a screening recorded before is kept.

Local candidates (`screen_neighbors` N > 0): besides the algorithm's K
proposals per trial, the candidates hold every walk one decision (or one
turn of a loop) away from each of the N best trials so far: the scorer
then runs a local search around the best (as predictor-guided local
search does on NAS benchmarks, White et al. 2021), whatever the
algorithm. The algorithm learns from those it picks like from its own
(`Algorithm.remember` counts them as proposed for `no_repeats`).

A scorer that cannot score yet (`ready()` False: a predictor with fewer
than `screen_min_trials` finished trials) lets the algorithm propose just
the trials to run, as without screening.

The scorers (each its own module): `graph_nas.search.predictor`
(learned from the search's trials), `graph_nas.child.proxies` through the
evaluator's `cheap_scores` (zero-cost proxies and the child's size, image
children), :class:`FunctionScorer` (a user's function of the config).
"""

import abc
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from graph_nas.errors import GraphNasError, SettingError
from graph_nas.options import load_named
from graph_nas.space.base import Actions

# Scorer names of the `screen` setting (besides "none" and module:function):
# the learned predictor, and the cheap scores an evaluator may offer
# (graph_nas.child.proxies for image children).
PREDICTOR = "predictor"
PROXY_NAMES = ("synflow", "naswot", "params", "flops")
SCORER_NAMES = ("none", PREDICTOR) + PROXY_NAMES
# The screen setting's values: a scorer's name, or "auto" (the default:
# graph_nas.search.settings.SearchSettings.resolved says what it is).
AUTO = "auto"
SCREEN_VALUES = (AUTO,) + SCORER_NAMES
# The `screen` setting of a search screened by a user's function (given to
# graph_nas.api.search as screen=fn): "function:module:qualname".
FUNCTION_PREFIX = "function:"


class Scorer(abc.ABC):
  """Scores candidate architectures cheaply; higher is better."""

  name = "scorer"

  def ready(self, history: "History") -> bool:  # pylint: disable=unused-argument
    """Whether scores mean something yet (a predictor needs trials)."""
    return True

  @abc.abstractmethod
  def score(self, walks: Sequence[Actions], configs: Sequence[dict],
            history: "History") -> np.ndarray:
    """One score per candidate (all of them decode); NaN: no score."""


class History:
  """What a scorer may learn from: the finished trials before a
  screening, as (walk, config, learning reward) of the successful ones,
  and each one's seconds for its whole budget (its wall seconds over the
  share of the budget it trained; NaN where unknown)."""

  def __init__(self, walks=(), configs=(), rewards=(), seconds=None):
    self.walks: List[Actions] = [tuple(w) for w in walks]
    self.configs: List[dict] = list(configs)
    self.rewards: List[float] = [float(r) for r in rewards]
    self.seconds: List[float] = (
        [math.nan] * len(self.rewards) if seconds is None else
        [math.nan if s is None else float(s) for s in seconds])
    if len(self.seconds) != len(self.rewards):
      raise ValueError("History: one seconds per reward")

  def __len__(self):
    return len(self.rewards)


class FunctionScorer(Scorer):
  """A user's cheap function of the decoded config: fn(config) -> float
  (higher: more promising)."""

  def __init__(self, fn: Callable[[dict], float], name: str = ""):
    if not callable(fn):
      raise GraphNasError(f"screen must be a function of the config, got "
                          f"{type(fn).__name__}")
    self.fn = fn
    self.name = name or getattr(fn, "__name__", "function")

  def score(self, walks, configs, history):
    out = np.full(len(configs), np.nan)
    for i, config in enumerate(configs):
      try:
        value = float(self.fn(config))
      except Exception as e:  # pylint: disable=broad-except
        raise GraphNasError(f"screen function {self.name} failed on "
                            f"{config}: {type(e).__name__}: {e}") from e
      out[i] = value if math.isfinite(value) else np.nan
    return out


class EvaluatorScorer(Scorer):
  """A cheap score the evaluator offers (`evaluator.cheap_scores(configs,
  name) -> list of floats`): zero-cost proxies, parameters, multiply-adds
  of image children (graph_nas.child.proxies)."""

  def __init__(self, evaluator, name: str):
    self.evaluator, self.name = evaluator, name

  def score(self, walks, configs, history):
    return np.asarray(self.evaluator.cheap_scores(list(configs), self.name),
                      np.float64)


def make_scorer(screen, space, evaluator, *, seed: int = 0,
                min_trials: int = 10, cost_weight: float = 0.0,
                features=None) -> Optional[Scorer]:
  """The scorer of the `screen` setting: None ("none"), "predictor" (on
  `features`, a function of the config or the screen_features setting's
  "module:function", when given), a cheap score of the evaluator's
  (PROXY_NAMES), a Scorer, or a function of the config."""
  if screen is None or screen == "none":
    return None
  if isinstance(screen, Scorer):
    return screen
  if callable(screen):
    return FunctionScorer(screen)
  if isinstance(screen, str) and screen.startswith(FUNCTION_PREFIX):
    raise SettingError("screen", screen, "names a function of the config: "
                       "pass the function itself (graph_nas.api.search's "
                       "screen=fn)")
  if screen == PREDICTOR:
    from graph_nas.search import predictor  # pylint: disable=import-outside-toplevel
    if isinstance(features, str) and features:  # the screen_features setting
      spec, features = features, load_named(features, "screen_features")
      if not callable(features):
        raise SettingError("screen_features", spec, f"names a "
                           f"{type(features).__name__}, not a function of "
                           "the config")
    features = features or None
    return predictor.PredictorScorer(space, seed=seed, min_trials=min_trials,
                                     cost_weight=cost_weight,
                                     features=features)
  if screen in PROXY_NAMES:
    offered = getattr(evaluator, "cheap_score_names", ())
    if screen not in offered:
      raise SettingError("screen", screen, "is a cheap score of image "
                         "children; this evaluator offers " +
                         (", ".join(offered) if offered else "none") +
                         " (use 'predictor' or a function of the config)")
    return EvaluatorScorer(evaluator, screen)
  raise SettingError("screen", screen, "must be " + ", ".join(
      repr(n) for n in SCORER_NAMES) + " or a function of the config")


def evaluator_screen(evaluator, rung_shares) -> str:
  """What screen="auto" is for this evaluator (SearchSettings.resolved's
  `evaluator_screen`): the evaluator's own `default_screen` ("none" for
  image children); "none" for one that reports scores at rungs while
  early stopping is on (`rung_shares` not empty): screening was measured
  to help searches that score each trial once, and with early stopping
  on CIFAR-10 it did worse; else the predictor."""
  own = getattr(evaluator, "default_screen", None)
  if own:
    return own
  if evaluator is not None and rung_shares:
    from graph_nas.search import executors  # pylint: disable=import-outside-toplevel
    if executors.takes_part(evaluator):
      return "none"
  return PREDICTOR


def settle(settings, algorithm: str, evaluator):
  """The search's settings (SearchSettings) checked, with screen="auto"
  made what it is for this algorithm's name and this evaluator
  (SearchSettings.resolved of evaluator_screen): what a run records and
  resumes with."""
  settings = settings.check()
  return settings.resolved(algorithm, evaluator_screen(
      evaluator, settings.rung_shares))


def scorer_of(settings, space, evaluator, features=None) -> Optional[Scorer]:
  """The scorer a search's settings (SearchSettings) name: make_scorer of
  its screen, seed, screen_min_trials, screen_cost_weight and
  screen_features (`features`: a function given in its place)."""
  return make_scorer(settings.screen, space, evaluator, seed=settings.seed,
                     min_trials=settings.screen_min_trials,
                     cost_weight=settings.screen_cost_weight,
                     features=(settings.screen_features if features is None
                               else features))


class Screen:
  """Picks the candidates to evaluate (see the module doc).

  Args:
    scorer: what scores the candidates.
    candidates_per_trial: K, candidates proposed per trial to run.
    explore: share of the picks drawn uniformly instead of by score.
    seed: the search's seed (with a screening's key, its random stream).
    neighbors: N; the candidates also hold the walks one decision away
      from each of the N best trials so far (`local_candidates`).
  """

  def __init__(self, scorer: Scorer, *, candidates_per_trial: int,
               explore: float, seed: int = 0, neighbors: int = 0):
    if candidates_per_trial < 2:
      raise SettingError("candidates_per_trial", candidates_per_trial,
                         "must be >= 2 for screening")
    if neighbors < 0:
      raise SettingError("screen_neighbors", neighbors, "must be >= 0")
    self.scorer = scorer
    self.k = int(candidates_per_trial)
    self.explore = float(explore)
    self.seed = int(seed)
    self.neighbors = int(neighbors)

  def local_candidates(self, space, history: History,
                       stream: int) -> List[Actions]:
    """The walks one action change or one loop change away
    (graph_nas.search.evolution.neighbours) from each of the `neighbors`
    best trials of the history (one per architecture; ties: the earlier
    trial), best first; [] when neighbors is 0. A local search around the
    best, its steps chosen by the scorer; seeded by (seed, stream), so a
    resumed screening sees the same candidates."""
    if not self.neighbors or not len(history):
      return []
    from graph_nas.search.algorithms import evolution  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng([self.seed, 7927, int(stream)])
    order = sorted((i for i, r in enumerate(history.rewards)
                    if math.isfinite(r)),
                   key=lambda i: (-history.rewards[i], i))
    parents, keys = [], set()
    for i in order:
      key = _key(history.configs[i])
      if key not in keys:
        keys.add(key)
        parents.append(history.walks[i])
      if len(parents) >= self.neighbors:
        break
    out = []
    for walk in parents:
      out.extend(evolution.neighbours(space, walk, rng))
    return out

  def ready(self, history: History) -> bool:
    return self.scorer.ready(history)

  def choose(self, walks: Sequence[Actions], configs: Sequence[Optional[dict]],
             n: int, history: History, stream: int,
             known: Callable[[dict], bool] = lambda c: False
             ) -> Tuple[List[int], List[Dict]]:
    """(indices of the n picks in pick order, one record per candidate).

    configs[i] is None for a walk that does not decode. known(config):
    the architecture was evaluated before in this search (it is picked
    only when nothing new is left). stream: a number naming this
    screening (the sync batch's first trial id) for its random draws."""
    rng = np.random.default_rng([self.seed, 7919, int(stream)])
    m = len(walks)
    keys, first = [], {}
    for i, config in enumerate(configs):
      key = None if config is None else _key(config)
      keys.append(key)
      if key is not None:
        first.setdefault(key, i)
    usable = [i for i in range(m) if keys[i] is not None and
              first[keys[i]] == i]
    fresh = [i for i in usable if not known(configs[i])]
    pool = fresh or usable
    scores = np.full(m, np.nan)
    if pool:
      got = np.asarray(self.scorer.score([walks[i] for i in pool],
                                         [configs[i] for i in pool],
                                         history), np.float64).reshape(-1)
      if got.shape[0] != len(pool):
        raise GraphNasError(f"scorer {self.scorer.name} gave {got.shape[0]} "
                            f"scores for {len(pool)} candidates")
      scores[pool] = got
    picks, explored = [], set()
    left = list(pool)
    while len(picks) < n and left:
      if rng.random() < self.explore:
        i = left[int(rng.integers(len(left)))]
        explored.add(i)
      else:  # the best score (NaN last), ties by proposal order
        i = min(left, key=lambda j: (-scores[j] if math.isfinite(scores[j])
                                     else math.inf, j))
      picks.append(i)
      left.remove(i)
    # Too few usable candidates: the rest in the algorithm's order (a walk
    # that does not decode then becomes a failed trial, as unscreened).
    for i in range(m):
      if len(picks) >= n:
        break
      if i not in picks:
        picks.append(i)
    chosen = set(picks)
    rows = [{"walk": walks[i], "config": configs[i],
             "score": None if not math.isfinite(scores[i]) else
             float(scores[i]), "scorer": self.scorer.name,
             "chosen": i in chosen, "explored": i in explored}
            for i in range(m)]
    return picks, rows


def _key(config: dict) -> str:
  from graph_nas.search.store import config_key  # pylint: disable=import-outside-toplevel
  return config_key(config)
