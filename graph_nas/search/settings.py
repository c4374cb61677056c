"""Every setting of a search, declared once: its default, bounds and help.

Three frozen dataclasses, by concern:

- `SearchSettings`: the loop (budget, batching, update policy, failures,
  reuse, logging, durability);
- `AlgorithmSettings`: what proposes the walks (the algorithm and its
  controller's options);
- `ExecutorSettings`: where children are evaluated (in process, a process
  pool, Ray).

(How a child is trained is `graph_nas.child.settings.TrainSettings`.) Each
field is declared with `graph_nas.options.setting(...)`: its default, help
text, bounds or choices, the front ends' name where it is not the field's
own (`ExecutorSettings.address` is the launcher's `--ray_address`) and
whether it is part of the run's identity; the flags, `graph_nas.api.search`'s
keyword arguments, the error wording and the record derive from it
(graph_nas.options, whose names this module re-exports).

A setting whose default depends on the algorithm (`entropy_weight`) is
declared None ("the algorithm's") and resolved from `ALGORITHM_DEFAULTS`,
the one table of per-algorithm defaults, by every front door alike.

This module imports neither TensorFlow nor absl at import time: the
launcher's flag checks answer within a second.
"""

import dataclasses
import functools
from typing import Any, Dict, Optional, Tuple

from graph_nas.errors import Naming, SettingError

# Entropy conventions of the controller's regulariser (graph_nas.search.losses).
ENTROPY_MODES = ("sum", "mean", "normalized")
ALGORITHM_NAMES = ("pqt", "reinforce", "random", "evolution")
EXECUTOR_NAMES = ("inprocess", "process", "ray")
UPDATE_POLICIES = ("sync", "async")
# The `screen` values that screen (graph_nas.search.screening.SCORER_NAMES
# but "none").
AUTO = "auto"  # = graph_nas.search.screening.AUTO (a test checks)
_SCREENED = ("predictor", "synflow", "naswot", "params", "flops", AUTO)

# The declaration mechanism (graph_nas.options), re-exported: its home is
# below every sub-package, so that child/ declares its settings alike.
from graph_nas.options import (  # noqa: E402,F401
    Option, Settings as _Settings, alternatives as _alternatives,
    as_record, check_bounds, defaults, define_flags, flag_name, from_flags,
    given_flags, identity_fields, options, setting)
from graph_nas import options as _options  # noqa: E402


@dataclasses.dataclass(frozen=True)
class SearchSettings(_Settings):
  """The search loop's settings (graph_nas.search.Search)."""
  max_trials: int = setting(1500, "Architectures to sample in all.",
                            lower=1)
  timeout_minutes: float = setting(
      0.0, "Start no new child (async) or batch of walks_per_update "
      "(sync) after this many minutes of this run (0: no limit); what "
      "runs then finishes and is stored.",
      lower=0.0,
      group="early stopping")
  walks_per_update: int = setting(
      1, "Architectures proposed per controller update.", lower=1,
      identity=True)
  seed: int = setting(0, "Seed of the controller and of every child's "
                      "training (seed + trial id).", lower=0, identity=True)
  failure_reward: float = setting(0.0, "Reward given to a failed child.")
  max_consecutive_failures: int = setting(
      10, "Stop after this many failed trials in a row.", lower=1)
  log_every: int = setting(1, "Log a line every N trials.", lower=1)
  update_policy: str = setting(
      "sync", "sync: evaluate a batch of walks_per_update walks, then "
      "update (a resumed seeded run reproduces an uninterrupted one); "
      "async: keep all workers busy and update after every "
      "walks_per_update results.", choices=UPDATE_POLICIES)
  max_staleness: int = setting(
      2, "async: results of walks proposed more than this many updates ago "
      "are stored but not learned from.", lower=0,
      only=("update_policy", ("async",)))
  rungs: str = setting(
      "1/4,1/2", "Early stopping (successive halving): the shares of a "
      "child's training budget at which it reports its score; at each, "
      "only the best 1/eta of the children that reached it go on "
      "(graph_nas.search.halving). 'none': every child trains its whole "
      "budget.", kind=str, identity=True,
      group="early stopping")
  eta: float = setting(
      2.0, "Early stopping: at each rung the best 1/eta of the children "
      "that reached it go on.", lower=1.01, identity=True,
      group="early stopping")
  screen: str = setting(
      AUTO, "Screening (graph_nas.search.screening): what scores the "
      "candidates_per_trial proposals of each trial to run, cheaply: "
      "'predictor' (a random forest fit on the trials so far), a cheap score "
      "of image children ('synflow', 'naswot', 'params', 'flops'), 'none', "
      "or 'auto': 'predictor' for the evolution searcher on a function "
      "scored once per trial (measured to help there, benchmarks/README.md) "
      "or with screen_features given, 'none' otherwise (image children and "
      "functions in early stopping: worse at equal time on CIFAR-10; the "
      "controllers: not measured). The API also takes a function of the "
      "config.", kind=str,
      identity=True,
      group="screening")
  candidates_per_trial: int = setting(
      16, "Screening: candidates the algorithm proposes per trial to run; "
      "the best-scored are evaluated (16: chosen on the suite's tuning "
      "seeds; 1: no screening).", lower=1, upper=1000, identity=True,
      only=("screen", _SCREENED), group="screening")
  screen_explore: float = setting(
      0.25, "Screening: share of the evaluated candidates drawn uniformly "
      "from the proposals instead of by score (a poor scorer cannot trap "
      "the search).", lower=0.0, upper=1.0, only=("screen", _SCREENED),
      group="screening")
  screen_neighbors: int = setting(
      0, "Screening: the candidates of each trial also hold every walk one "
      "decision (or one turn of a loop) away from each of this many best "
      "trials so far (a local search around the best, scored like the "
      "rest; 0: only the algorithm's proposals).", lower=0, upper=100,
      only=("screen", _SCREENED), group="screening")
  screen_min_trials: int = setting(
      10, "Screening with the predictor: finished trials it needs before "
      "it screens (before, the algorithm proposes only what runs).",
      lower=2, only=("screen", ("predictor", AUTO)),
      group="screening")
  screen_cost_weight: float = setting(
      0.0, "Screening with the predictor: how much a candidate's predicted "
      "training time counts against it. Its score is the predicted reward "
      "(plus the upper-confidence bonus) minus this weight times log2 of "
      "its predicted seconds over the median of the trials so far: a child "
      "predicted twice as slow must be predicted this much better (in "
      "reward units). 0: time is ignored.", lower=0.0, upper=1.0,
      only=("screen", ("predictor", AUTO)), group="screening")
  screen_features: str = setting(
      "", "Screening with the predictor: module:function of the config "
      "giving a list of numbers of one length, what you know of the domain "
      "(e.g. the operations along each path of a cell, the same for two "
      "orderings of one cell); the predictor learns from them in place of "
      "the walk's decisions, and scores last a candidate whose numbers equal "
      "a finished trial's. '': the walk's decisions. The API also takes the "
      "function.", kind=str, only=("screen", ("predictor", AUTO)),
      group="screening")
  reuse_results: bool = setting(
      True, "An architecture evaluated before in this search reuses its "
      "result instead of being evaluated again.")
  tensorboard: bool = setting(
      True, "Per-trial TensorBoard curves and HParams sessions in the run "
      "folder's tensorboard/ (off: no TensorFlow import for a search whose "
      "children do not need it, e.g. a toy task with evolution).")
  checkpoint_every_s: float = setting(
      0.0, "sync: seconds between controller checkpoints (0: after every "
      "update; a resumed search replays the trials after it).", lower=0.0,
      flagged=False)
  sync_store: bool = setting(
      True, "Flush each stored trial to the disk (off: a killed search "
      "still loses no finished trial, an OS crash may).", flagged=False)


  @functools.cached_property
  def rung_shares(self) -> Tuple[float, ...]:
    """`rungs` parsed, once (graph_nas.search.halving.parse_rungs: the
    shares of a child's budget, () when off); a SettingError naming rungs
    when it does not parse."""
    from graph_nas.search import halving
    return tuple(halving.parse_rungs(self.rungs))

  def resolved(self, algorithm: str,
               evaluator_screen: str = "predictor") -> "SearchSettings":
    """These settings with screen='auto' made what it stands for here:
    'predictor' with screen_features given, or for the evolution searcher
    (`algorithm`) where the evaluator's default (`evaluator_screen`:
    graph_nas.search.screening.evaluator_screen, 'none' for image children
    and for a function in early stopping) is the predictor; else 'none'.
    candidates_per_trial 1 is 'none' too, and 'none' is recorded with
    candidates_per_trial 1 (as runs stored before screening are)."""
    screen = self.screen
    if screen == AUTO:
      if self.candidates_per_trial < 2:
        screen = "none"
      elif self.screen_features or (algorithm == "evolution" and
                                    evaluator_screen == "predictor"):
        screen = "predictor"
      else:
        screen = "none"
    k = 1 if screen == "none" else self.candidates_per_trial
    return dataclasses.replace(self, screen=screen, candidates_per_trial=k)

  def check(self):
    super().check()
    self.rung_shares  # pylint: disable=pointless-statement  (parses once)
    from graph_nas.search import screening
    if self.screen not in screening.SCREEN_VALUES and not \
        self.screen.startswith(screening.FUNCTION_PREFIX):
      raise SettingError("screen", self.screen, "must be " + _alternatives(
          screening.SCREEN_VALUES) + " (the API also takes a function of "
                         "the config)")
    if self.screen_features and self.screen not in (screening.PREDICTOR,
                                                    AUTO):
      raise SettingError("screen_features", self.screen_features, "is what "
                         "the predictor learns from: only with "
                         f"screen='predictor' (got screen={self.screen!r})")
    if self.screen not in ("none", AUTO) and self.candidates_per_trial < 2:
      raise SettingError("candidates_per_trial", self.candidates_per_trial,
                         f"must be >= 2 with screen={self.screen!r} (1 "
                         "proposes only what runs: nothing to screen)")
    return self


@dataclasses.dataclass(frozen=True)
class AlgorithmSettings(_Settings):
  """What proposes the walks: the algorithm and its controller."""
  algorithm: str = setting("evolution", "Search algorithm (evolution: "
                           "the best measured, benchmarks/README.md).",
                           choices=ALGORITHM_NAMES, identity=True)
  learning_rate: float = setting(
      1e-2, "Controller (Adam) learning rate.", lower=1e-12,
      only=("algorithm", ("pqt", "reinforce")))
  entropy_weight: Optional[float] = setting(
      None, "Entropy regularisation weight (default: the algorithm's, "
      "pqt 0.8, reinforce 0.1).", kind=float, lower=0.0,
      only=("algorithm", ("pqt", "reinforce")))
  entropy_mode: str = setting(
      "sum", "Entropy of a walk in the regulariser: sum or mean of the "
      "step entropies, or their mean divided by log |A_v| (normalized; see "
      "graph_nas.search.algorithms).", choices=ENTROPY_MODES,
      only=("algorithm", ("pqt", "reinforce")))
  value_features: int = setting(
      0, "0: the paper's controller. K >= 2: an action whose value is a "
      "number also gets a logit from an embedding of its value (K Gaussian "
      "bumps shared by all vertices; see graph_nas.search.controller), so "
      "neighbouring values share what is learned.", lower=0,
      only=("algorithm", ("pqt", "reinforce")))
  queue_size: int = setting(10, "PQT: size K of the priority queue.",
                            lower=1, only=("algorithm", ("pqt",)))
  pg_weight: float = setting(1.0, "PQT: weight of an added REINFORCE term.",
                             lower=0.0, only=("algorithm", ("pqt",)))
  baseline_decay: float = setting(
      0.95, "Decay of the reward baseline's moving average.", lower=0.0,
      upper=0.999999, only=("algorithm", ("pqt", "reinforce")))
  hidden_dim: int = setting(64, "Controller LSTM width.", lower=1,
                            only=("algorithm", ("pqt", "reinforce")))
  embedding_dim: int = setting(32, "Controller action-embedding width.",
                               lower=1,
                               only=("algorithm", ("pqt", "reinforce")))
  no_repeats: bool = setting(
      True, "Draw a proposal again when its architecture was proposed "
      "before in this search (a repeat costs a trial; see "
      "graph_nas.search.algorithms).",
      only=("algorithm", ("pqt", "reinforce", "evolution")))
  normalize_advantages: bool = setting(
      True, "Divide the controller's advantages R - b by the standard "
      "deviation of the rewards seen, so that its steps do not depend on "
      "the rewards' scale.", only=("algorithm", ("pqt", "reinforce")))
  local_step_prob: float = setting(
      0.7, "Evolution: share of changes of an ordered numeric decision (an "
      "int_range) that move to a nearby value instead of any other "
      "(graph_nas.search.evolution).", lower=0.0, upper=1.0,
      only=("algorithm", ("evolution",)))
  population_size: int = setting(
      20, "Evolution: size P of the population (the first P proposals are "
      "random walks; then the oldest member leaves as each new one joins).",
      lower=2, only=("algorithm", ("evolution",)))
  tournament_size: int = setting(
      10, "Evolution: a parent is the best of this many members drawn from "
      "the population (at most population_size).", lower=1,
      only=("algorithm", ("evolution",)))

  def check(self):
    super().check()
    if self.value_features == 1:
      raise SettingError("value_features", 1, "must be 0 (the paper's "
                         "controller) or >= 2")
    if self.algorithm == "evolution" and \
        self.tournament_size > self.population_size:
      raise SettingError("tournament_size", self.tournament_size,
                         f"must be <= population_size "
                         f"({self.population_size})")
    return self

  def resolved(self) -> "AlgorithmSettings":
    """This, with every None ("the algorithm's") replaced by the
    algorithm's default (ALGORITHM_DEFAULTS)."""
    table = ALGORITHM_DEFAULTS.get(self.algorithm, {})
    return dataclasses.replace(self, **{
        name: table[name] for name in table if getattr(self, name) is None})

  def algorithm_kwargs(self) -> Dict[str, Any]:
    """Keyword arguments of graph_nas.search.algorithms.make_algorithm: the
    settings that apply to this algorithm, resolved."""
    this = self.resolved()
    out = {}
    for name, opt in options(type(self)).items():
      if name == "algorithm":
        continue
      if opt.only and self.algorithm not in opt.only[1]:
        continue
      out[name] = getattr(this, name)
    return out


# The one table of per-algorithm defaults (a field declared None above).
ALGORITHM_DEFAULTS = {
    "pqt": {"entropy_weight": 0.8},
    "reinforce": {"entropy_weight": 0.1},
}


@dataclasses.dataclass(frozen=True)
class ExecutorSettings(_Settings):
  """Where children are evaluated (graph_nas.search.executors)."""
  executor: str = setting(
      "inprocess", "Where children are evaluated: in this process, one "
      "fresh local process per child, or Ray tasks.",
      choices=EXECUTOR_NAMES)
  workers: int = setting(1, "Children evaluated at once (process and ray "
                         "executors).", lower=1,
                         only=("executor", ("process", "ray")))
  worker_threads: int = setting(
      0, "process executor: TensorFlow threads of each worker process "
      "(intra- and inter-op; 0: the machine's cores shared among the "
      "workers, at least 1 each; $TF_NUM_INTRAOP_THREADS, when set, "
      "wins).", lower=0, only=("executor", ("process",)))
  trials_per_worker: int = setting(
      1, "process executor: trials one worker process runs before a fresh "
      "one replaces it (1: a fresh process per child, its memory given back "
      "when it ends; 0: no limit, TensorFlow and the data loaded once per "
      "worker instead of once per child).", lower=0,
      only=("executor", ("process",)))
  address: Optional[str] = setting(
      None, "Ray cluster: 'auto' or HOST:PORT (default: start a local "
      "Ray).", kind=str, flag="ray_address", only=("executor", ("ray",)))
  cpus_per_child: float = setting(1.0, "Ray: CPUs reserved per child.",
                                  lower=0.0, only=("executor", ("ray",)))
  gpus_per_child: float = setting(0.0, "Ray: GPUs reserved per child.",
                                  lower=0.0, only=("executor", ("ray",)))
  retries: int = setting(
      1, "Ray: times a trial whose worker died is retried before it is "
      "recorded failed.", lower=0, flag="worker_retries",
      only=("executor", ("ray",)))

  def check(self):
    super().check()
    if self.executor == "inprocess" and self.workers != 1:
      raise SettingError("workers", self.workers, "applies to executor="
                         "'process' or 'ray'; the in-process executor runs "
                         "one trial at a time")
    return self

  def executor_kwargs(self) -> Dict[str, Any]:
    """Keyword arguments of graph_nas.search.executors.make_executor."""
    if self.executor == "ray":
      return {"workers": self.workers, "address": self.address,
              "cpus_per_child": self.cpus_per_child,
              "gpus_per_child": self.gpus_per_child,
              "retries": self.retries}
    return {"workers": self.workers, "threads": self.worker_threads,
            "trials_per_worker": self.trials_per_worker}


SETTINGS_CLASSES = (SearchSettings, AlgorithmSettings, ExecutorSettings)


def flag_naming(*classes, extra=None, quote_strings=False) -> Naming:
  """graph_nas.options.flag_naming over `classes` (default: the search's,
  the algorithm's and the executor's settings)."""
  return _options.flag_naming(*(classes or SETTINGS_CLASSES), extra=extra,
                              quote_strings=quote_strings)


def split_overrides(overrides: Dict[str, Any], classes=SETTINGS_CLASSES):
  """graph_nas.options.split_overrides over the search's settings."""
  return _options.split_overrides(overrides, classes)


def describe(classes=SETTINGS_CLASSES, indent=0) -> str:
  return _options.describe(classes, indent)
