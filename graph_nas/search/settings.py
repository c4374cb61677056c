"""Every setting of a search, declared once: its default, bounds and help.

Three frozen dataclasses, by concern:

- `SearchSettings`: the loop (budget, batching, update policy, failures,
  reuse, logging, durability);
- `AlgorithmSettings`: what proposes the walks (the algorithm and its
  controller's options);
- `ExecutorSettings`: where children are evaluated (in process, a process
  pool, Ray).

(How a child is trained is `graph_nas.child.settings.TrainSettings`.) Each
field is declared with `setting(...)`: its default, help text, bounds or
choices, and the front ends' name where it is not the field's own
(`ExecutorSettings.address` is the launcher's `--ray_address`). Everything
else derives from these declarations:

- the launcher's and the experiment runner's absl flags (`define_flags`,
  `from_flags`), with the same defaults, bounds and help;
- `graph_nas.api.search`'s keyword arguments (`split_overrides`);
- the wording of errors that name a setting (`flag_naming`) and the bounds
  checks (`check_bounds`);
- the run's recorded settings (`as_record`).

A setting whose default depends on the algorithm (`entropy_weight`) is
declared None ("the algorithm's") and resolved from `ALGORITHM_DEFAULTS`,
the one table of per-algorithm defaults, by every front door alike.

This module imports neither TensorFlow nor absl at import time: the
launcher's flag checks answer within a second.
"""

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

from graph_nas.errors import Naming, SettingError

# Entropy conventions of the controller's regulariser (graph_nas.search.losses).
ENTROPY_MODES = ("sum", "mean", "normalized")
ALGORITHM_NAMES = ("pqt", "reinforce", "random", "evolution")
EXECUTOR_NAMES = ("inprocess", "process", "ray")
UPDATE_POLICIES = ("sync", "async")
# The `screen` values that screen (graph_nas.search.screening.SCORER_NAMES
# but "none").
_SCREENED = ("predictor", "synflow", "naswot", "params", "flops")

_OPTION = "graph_nas.option"


@dataclasses.dataclass(frozen=True)
class Option:
  """What a setting's declaration says besides its default.

  Attributes:
    help: one sentence or two, shown by --help and in the API docs.
    kind: int, float, str or bool (the default's type when it is not None).
    lower, upper: inclusive bounds of a number (None: unbounded).
    choices: the values a string may take.
    flag: the front ends' name when it is not the field's own.
    only: (setting, values): the setting has an effect only when that other
      setting takes one of these values (e.g. queue_size only with
      algorithm pqt).
    flagged: False for a setting the command line does not offer (it is
      set by a front end itself, e.g. the experiment's durability).
    identity: part of the run's identity: a folder holding a search resumes
      only with the same value (graph_nas.search.loop).
  """
  help: str
  kind: type = float
  lower: Optional[float] = None
  upper: Optional[float] = None
  choices: Optional[Tuple[str, ...]] = None
  flag: Optional[str] = None
  only: Optional[Tuple[str, Tuple[Any, ...]]] = None
  flagged: bool = True
  identity: bool = False


def setting(default, help_text, *, kind=None, **option):
  """A dataclass field declaring one setting (see Option for `option`)."""
  kind = kind or type(default)
  return dataclasses.field(default=default, metadata={
      _OPTION: Option(help=help_text, kind=kind, **option)})


def options(cls) -> Dict[str, Option]:
  """name -> Option of every declared setting of a settings class."""
  return {f.name: f.metadata[_OPTION] for f in dataclasses.fields(cls)
          if _OPTION in f.metadata}


def defaults(cls) -> Dict[str, Any]:
  return {f.name: f.default for f in dataclasses.fields(cls)
          if _OPTION in f.metadata}


def identity_fields(cls) -> Tuple[str, ...]:
  """The settings of `cls` that are part of a run's identity."""
  return tuple(n for n, o in options(cls).items() if o.identity)


def check_bounds(obj) -> None:
  """Raises SettingError naming the first field of `obj` outside its
  declared bounds or choices (None passes: "unset")."""
  for name, opt in options(type(obj)).items():
    value = getattr(obj, name)
    if value is None:
      continue
    if opt.choices is not None and value not in opt.choices:
      raise SettingError(name, value, f"must be {_alternatives(opt.choices)}")
    if opt.kind in (int, float):
      if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingError(name, value, "must be a number")
      if opt.kind is float and not math.isfinite(value):
        raise SettingError(name, value, "must be a finite number")
      if opt.lower is not None and not value >= opt.lower:
        raise SettingError(name, value, f"must be >= {opt.lower:g}")
      if opt.upper is not None and not value <= opt.upper:
        raise SettingError(name, value, f"must be <= {opt.upper:g}")


def _alternatives(values) -> str:
  """"'a' or 'b'", "'a', 'b' or 'c'"."""
  shown = [repr(v) for v in values]
  return shown[0] if len(shown) == 1 else (", ".join(shown[:-1]) + " or " +
                                          shown[-1])


class _Settings:
  """Shared behaviour of the settings classes."""

  def replace(self, **changes):
    """A copy with `changes`; an unknown name is a SettingError."""
    known = options(type(self))
    for name in changes:
      if name not in known:
        raise SettingError(name, changes[name], f"not a setting of "
                           f"{type(self).__name__} (known: "
                           f"{', '.join(sorted(known))})")
    return dataclasses.replace(self, **changes)

  def check(self):
    """Raises SettingError naming the first bad field; returns self."""
    check_bounds(self)
    return self


@dataclasses.dataclass(frozen=True)
class SearchSettings(_Settings):
  """The search loop's settings (graph_nas.search.Search)."""
  max_trials: int = setting(1500, "Architectures to sample in all.",
                            lower=1)
  timeout_minutes: float = setting(
      0.0, "Start no new child (async) or batch of walks_per_update "
      "(sync) after this many minutes of this run (0: no limit); what "
      "runs then finishes and is stored.",
      lower=0.0)
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
      "budget.", kind=str, identity=True)
  eta: float = setting(
      2.0, "Early stopping: at each rung the best 1/eta of the children "
      "that reached it go on.", lower=1.01, identity=True)
  screen: str = setting(
      "none", "Screening (graph_nas.search.screening): what scores the "
      "candidates_per_trial proposals of each trial to run, cheaply: "
      "'predictor' (a random forest fit on the trials so far), a cheap score "
      "of image children ('synflow', 'naswot', 'params', 'flops'), or "
      "'none'. The API also takes a function of the config.", kind=str,
      identity=True)
  candidates_per_trial: int = setting(
      1, "Screening: candidates the algorithm proposes per trial to run; "
      "the best-scored are evaluated (1: no screening).", lower=1,
      upper=1000, identity=True, only=("screen", _SCREENED))
  screen_explore: float = setting(
      0.25, "Screening: share of the evaluated candidates drawn uniformly "
      "from the proposals instead of by score (a poor scorer cannot trap "
      "the search).", lower=0.0, upper=1.0, only=("screen", _SCREENED))
  screen_min_trials: int = setting(
      10, "Screening with the predictor: finished trials it needs before "
      "it screens (before, the algorithm proposes only what runs).",
      lower=2, only=("screen", ("predictor",)))
  reuse_results: bool = setting(
      True, "An architecture evaluated before in this search reuses its "
      "result instead of being evaluated again.")
  tensorboard: bool = setting(
      True, "Per-trial TensorBoard curves and HParams sessions.",
      flagged=False)
  checkpoint_every_s: float = setting(
      0.0, "sync: seconds between controller checkpoints (0: after every "
      "update; a resumed search replays the trials after it).", lower=0.0,
      flagged=False)
  sync_store: bool = setting(
      True, "Flush each stored trial to the disk (off: a killed search "
      "still loses no finished trial, an OS crash may).", flagged=False)


  def check(self):
    super().check()
    from graph_nas.search import halving
    halving.parse_rungs(self.rungs)  # a SettingError naming rungs
    from graph_nas.search import screening
    if self.screen not in screening.SCORER_NAMES and not \
        self.screen.startswith(screening.FUNCTION_PREFIX):
      raise SettingError("screen", self.screen, "must be " + _alternatives(
          screening.SCORER_NAMES) + " (the API also takes a function of "
                         "the config)")
    if self.screen != "none" and self.candidates_per_trial < 2:
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
    return {"workers": self.workers}


SETTINGS_CLASSES = (SearchSettings, AlgorithmSettings, ExecutorSettings)


def flag_name(cls, name: str) -> str:
  opt = options(cls)[name]
  return opt.flag or name


def flag_naming(*classes, extra=None, quote_strings=False) -> Naming:
  """A Naming that names each setting of `classes` as its flag
  (--max_trials, --ray_address), plus `extra` (setting -> flag name)."""
  names = {}
  for cls in classes or SETTINGS_CLASSES:
    for name in options(cls):
      names[name] = "--" + flag_name(cls, name)
  names.update({k: "--" + v for k, v in (extra or {}).items()})
  return Naming(names, quote_strings=quote_strings)


def split_overrides(overrides: Dict[str, Any], classes=SETTINGS_CLASSES):
  """{class: settings object} from keyword `overrides` (setting name ->
  value), each class's declared defaults elsewhere. An unknown name is a
  SettingError listing the known ones."""
  known = {name: cls for cls in classes for name in options(cls)}
  per_class = {cls: {} for cls in classes}
  for name, value in overrides.items():
    if name not in known:
      raise SettingError(name, value, "unknown setting (known: " +
                         ", ".join(sorted(known)) + ")")
    per_class[known[name]][name] = value
  return {cls: cls(**values).check() for cls, values in per_class.items()}


def as_record(*objects) -> Dict[str, Any]:
  """The settings of `objects` as one JSON-able dict (a run's record)."""
  out = {}
  for obj in objects:
    out.update(dataclasses.asdict(obj))
  return out


def describe(classes=SETTINGS_CLASSES, indent=0) -> str:
  """The declared settings as documentation lines: name=default: help."""
  pad = " " * indent
  lines = []
  for cls in classes:
    lines.append(f"{pad}{cls.__name__}:")
    for f in dataclasses.fields(cls):
      opt = f.metadata.get(_OPTION)
      if opt is not None:
        lines.append(f"{pad}  {f.name}={f.default!r}: {opt.help}")
  return "\n".join(lines)


# --------------------------------------------------------------- flags
def define_flags(cls, flag_values=None, *, names=None, defaults_=None,
                 help_=None):
  """Defines one absl flag per declared, flagged setting of `cls` (or only
  `names`), with the declaration's default, bounds, choices and help.

  defaults_ / help_: a front end's own default or help for some settings
  (setting name -> value), e.g. the experiment's "the paper's for the task".
  """
  from absl import flags
  fv = flag_values if flag_values is not None else flags.FLAGS
  defaults_, help_ = dict(defaults_ or {}), dict(help_ or {})
  for f in dataclasses.fields(cls):
    opt = f.metadata.get(_OPTION)
    if opt is None or not opt.flagged or (names and f.name not in names):
      continue
    name = opt.flag or f.name
    default = defaults_.get(f.name, f.default)
    text = help_.get(f.name, opt.help)
    if opt.choices is not None:
      flags.DEFINE_enum(name, default, list(opt.choices), text,
                        flag_values=fv)
    elif opt.kind is bool:
      flags.DEFINE_boolean(name, default, text, flag_values=fv)
    elif opt.kind is int:
      flags.DEFINE_integer(name, default, text, lower_bound=opt.lower,
                           upper_bound=opt.upper, flag_values=fv)
    elif opt.kind is float:
      flags.DEFINE_float(name, default, text, lower_bound=opt.lower,
                         upper_bound=opt.upper, flag_values=fv)
    else:
      flags.DEFINE_string(name, default, text, flag_values=fv)


def from_flags(cls, flag_values=None, **overrides):
  """The settings object of `cls` from the parsed flags (the settings the
  command line does not offer keep their defaults, or `overrides`)."""
  from absl import flags
  fv = flag_values if flag_values is not None else flags.FLAGS
  values = {}
  for name, opt in options(cls).items():
    flag = opt.flag or name
    if opt.flagged and flag in fv:
      values[name] = fv[flag].value
  values.update(overrides)
  return cls(**values).check()


def given_flags(cls, flag_values=None):
  """[(setting name, flag name, Option)] of the settings of `cls` given on
  the command line."""
  from absl import flags
  fv = flag_values if flag_values is not None else flags.FLAGS
  out = []
  for name, opt in options(cls).items():
    flag = opt.flag or name
    if opt.flagged and flag in fv and fv[flag].present:
      out.append((name, flag, opt))
  return out
