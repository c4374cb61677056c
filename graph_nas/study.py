"""A study: ask for an architecture, train it your way, tell the result.

  from graph_nas import api

  study = api.Study("stack_layers", "runs/stack", seed=0)
  for _ in range(50):
    trial = study.ask()              # trial.config: the architecture
    study.tell(trial, reward(trial.config))
  study.best_config, study.best_value
  study.close()                      # or: with api.Study(...) as study:

  api.load_study("runs/stack").trials_dataframe()   # read-only, any time

`Study` runs the same search as `graph_nas.api.search` (the loop, the
trial store, the folder's lock, the algorithms, screening, early stopping,
resume), driven by its caller (graph_nas.search.ask_tell): the caller
evaluates each architecture where it likes (another process, a cluster
job, a notebook cell) and reports it. Values are rewards: higher is
better (tell the negative of a loss). Several trials may be asked before
any is told; the algorithm learns after every `walks_per_update` results.

Nothing is lost: a trial is recorded when asked; if the process dies, the
folder reopened with `Study` hands the trials not told out again, first,
with the same numbers, walks and seeds; what was told is in the store.

Early stopping (on by default, as in api.search): `trial.report(score,
budget_fraction)` at the rungs, and `trial.should_stop()`; tell a stopped
trial its last score. `Study.enqueue(config)` has a known architecture
(a production model, MnasNet-A1) asked first; it counts as a trial and
teaches the algorithm like any other.
"""

import dataclasses
import os
from typing import Any, Dict, List, Optional

from graph_nas import options as options_lib
from graph_nas.errors import GraphNasError, SettingError, SettingsFault
from graph_nas.search import settings as settings_lib

# api.search's loop settings that have no meaning when the caller drives
# the search; every other search and algorithm setting is a keyword of
# Study, declared once in graph_nas.search.settings.
DRIVER_ONLY = ("max_trials", "timeout_minutes", "update_policy",
               "max_consecutive_failures", "checkpoint_every_s")
STUDY_CLASSES = (settings_lib.SearchSettings, settings_lib.AlgorithmSettings)
STUDY_KEYWORDS = tuple(name for cls in STUDY_CLASSES
                       for name in options_lib.options(cls)
                       if name not in DRIVER_ONLY)
# The budget entry that makes a study's folder its own (a folder is resumed
# by the same front door only: api.search on it is an identity mismatch).
STUDY_BUDGET = {"evaluator": "graph_nas.study (ask and tell)"}


@dataclasses.dataclass(frozen=True)
class TrialRecord:
  """One trial of a study as stored (what `Study.trials` lists).

  state: "complete" (trained its whole budget), "stopped" (stopped early:
  `budget_fraction` < 1), "failed", or "asked" (not told yet). value: the
  reward (None unless complete or stopped). cached_from: the trial whose
  result a repeat of an architecture reused (reuse_results)."""
  number: int
  state: str
  value: Optional[float]
  config: Dict[str, Any]
  walk: tuple
  seed: int
  budget_fraction: Optional[float] = None
  metrics: Dict[str, Any] = dataclasses.field(default_factory=dict)
  reason: str = ""
  started: Optional[float] = None
  finished: Optional[float] = None
  duration_s: Optional[float] = None
  cached_from: Optional[int] = None


def _record(row) -> TrialRecord:
  fraction = row.get("budget_fraction")
  state = ("failed" if row["status"] != "ok" else "stopped"
           if fraction is not None and fraction < 1 else "complete")
  return TrialRecord(
      number=row["trial_id"], state=state, value=row["reward"],
      config=row["config"], walk=tuple(row["walk"]), seed=row["seed"],
      budget_fraction=fraction, metrics=row["metrics"], reason=row["reason"],
      started=row["started"], finished=row["finished"],
      duration_s=row["seconds"], cached_from=row["cached_from"])


def _asked_record(rec) -> TrialRecord:
  return TrialRecord(number=rec["trial_id"], state="asked", value=None,
                     config=rec["config"], walk=tuple(rec["walk"]),
                     seed=rec["seed"], started=rec["asked"])


class _Queries:
  """What a study answers (its store: `self._store()`)."""

  @property
  def trials(self) -> List[TrialRecord]:
    """Every trial, by number: stored ones, then those asked and not told
    (state "asked")."""
    store = self._store()
    rows = [_record(r) for r in store.trials()]
    rows += [_asked_record(r) for r in store.asked()]
    return sorted(rows, key=lambda r: r.number)

  @property
  def best_trial(self) -> TrialRecord:
    """The complete trial with the highest value (ties: the first).
    GraphNasError when there is none yet."""
    best = self._store().best(1)
    if not best:
      raise GraphNasError("no complete trial yet (a trial stopped early "
                          "does not count)", source=self.out_dir)
    return _record(best[0])

  @property
  def best_config(self) -> Dict[str, Any]:
    """The best trial's architecture."""
    return self.best_trial.config

  @property
  def best_value(self) -> float:
    """The best trial's value."""
    return self.best_trial.value

  def trials_dataframe(self):
    """The trials as a pandas DataFrame: number, state, value,
    budget_fraction, duration_s, seed, cached_from, reason, and one column
    per config entry ("config.<key path>"; lists of layers flattened as
    config.layers.0.kernel_size ...). Needs pandas (the `pandas` extra)."""
    try:
      import pandas as pd
    except ImportError:
      raise GraphNasError("trials_dataframe() needs pandas: pip install "
                          "'graph-nas[pandas]'") from None
    rows = []
    for t in self.trials:
      row = {"number": t.number, "state": t.state, "value": t.value,
             "budget_fraction": t.budget_fraction,
             "duration_s": t.duration_s, "seed": t.seed,
             "cached_from": t.cached_from, "reason": t.reason}
      row.update(_flatten(t.config, "config"))
      rows.append(row)
    return pd.DataFrame(rows)


def _flatten(value, prefix: str) -> Dict[str, Any]:
  if isinstance(value, dict):
    out = {}
    for k, v in value.items():
      out.update(_flatten(v, f"{prefix}.{k}"))
    return out
  if isinstance(value, list):
    out = {}
    for i, v in enumerate(value):
      out.update(_flatten(v, f"{prefix}.{i}"))
    return out
  return {prefix: value}


class Study(_Queries):
  """A search driven by ask() and tell() (see the module docstring).

  Args:
    space: a SearchSpace, a SpaceBuilder, or a textproto path / shipped
      name (as api.search takes).
    out_dir: the study's folder; a folder holding a study reopens it (the
      same settings, or an IdentityMismatch naming the one that differs).
    verbose: log a line per told trial (the best so far) to stderr.
    settings: the search's and the algorithm's settings by name (keyword-
      only; declared in graph_nas.search.settings with their defaults, as
      api.search takes them), except the loop's own: {driver_only}.
      `screen` and `screen_features` also take a function of the config.
  """

  def __init__(self, space, out_dir: str, *, verbose: bool = False,
               **settings):
    from graph_nas import api
    from graph_nas.report import observers as report_observers
    from graph_nas.search import ask_tell, assemble
    self.out_dir = os.fspath(out_dir)
    self.verbose = verbose
    for name, value in settings.items():
      if name in DRIVER_ONLY:
        raise SettingError(name, value, "a setting of api.search's loop: "
                           "a Study is driven by its caller's ask() and "
                           "tell()").named(api.API_NAMES)
    self.space = api._as_space(space)  # pylint: disable=protected-access
    make_scorer = api.function_settings(self.space, None, settings)
    # The loop settings a caller-driven search runs with.
    settings.update(update_policy="async",
                    max_consecutive_failures=2 ** 62)
    try:
      chosen = settings_lib.split_overrides(settings)
    except SettingsFault as e:
      e.named(api.API_NAMES)
      raise
    loop = chosen[settings_lib.SearchSettings]
    scorer = make_scorer(loop)
    with api._progress(verbose):  # pylint: disable=protected-access
      job = assemble.assemble(
          self.space, _Caller(), self.out_dir, search=loop,
          algorithm=chosen[settings_lib.AlgorithmSettings],
          budget=dict(STUDY_BUDGET), record={"api": "Study"}, scorer=scorer,
          observers=report_observers.from_settings(loop, self.out_dir))
      try:
        self._driver = ask_tell.AskTell(job)
      except BaseException:
        job.close()
        raise
    self._search = job
    self._closed = False

  def _store(self):
    self._check_open()
    return self._search.store

  def _check_open(self):
    if self._closed:
      raise GraphNasError("the study is closed: open the folder again "
                          "(api.Study, or api.load_study to read it)",
                          source=self.out_dir)

  def ask(self):
    """The next architecture to evaluate: an AskedTrial with .number,
    .config, .walk, .seed, and report(value, budget_fraction) /
    should_stop() for early stopping. Trials asked and not told when the
    folder was last closed (or its process died) come first."""
    self._check_open()
    from graph_nas import api
    with api._progress(self.verbose):  # pylint: disable=protected-access
      return self._driver.ask()

  def tell(self, trial, value: Optional[float] = None, *,
           error=None, metrics: Optional[Dict[str, Any]] = None
           ) -> TrialRecord:
    """Stores an asked trial's result and lets the algorithm learn from it.

    Args:
      trial: what ask() returned, or its number.
      value: the trial's reward, a finite number (higher is better); for
        a trial stopped early, its last reported score.
      error: instead of a value, why the trial failed (an exception or a
        text); the algorithm learns `failure_reward` from it.
      metrics: more numbers to store with the trial (JSON-able).

    Raises:
      graph_nas.search.ask_tell.TellError: the trial was told already, is
        of another study, was not asked, or the value is not a finite
        number; nothing is changed.
    """
    self._check_open()
    from graph_nas import api
    with api._progress(self.verbose):  # pylint: disable=protected-access
      return _record(self._driver.tell(trial, value, error=error,
                                       metrics=metrics))

  def enqueue(self, config: Dict[str, Any]) -> bool:
    """Has `config` (an architecture of the space, as a decoded walk)
    asked before the algorithm's proposals, in the order enqueued. It is
    recorded at once (a reopened study still has it queued); a config
    enqueued in this folder before is not queued again (a rerun script's
    enqueue is harmless): False then.

    Raises:
      GraphNasError: no walk of the space builds `config`, naming the
        first decision that does not fit.
    """
    self._check_open()
    return self._search.enqueue([config]) == 1

  @property
  def asked(self) -> List[int]:
    """The numbers of the trials handed out by this object and not told."""
    return sorted(self._driver.out)

  def close(self) -> None:
    """Writes the reports (top_trials.md, best_architecture.json, the
    plots) when a trial is complete and releases the folder. Trials asked
    and not told stay asked: the folder reopened asks them again."""
    if self._closed:
      return
    from graph_nas import api
    from graph_nas.search.loop import SearchStopped
    try:
      with api._progress(self.verbose):  # pylint: disable=protected-access
        self._driver.close()
        try:
          self._search.finalize(retrain=False)
        except SearchStopped:
          pass  # no complete trial yet: nothing to report
    finally:
      self._closed = True
      self._search.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def __repr__(self):
    state = "closed" if self._closed else "open"
    return f"Study({self.space.name!r}, {self.out_dir!r}, {state})"


if Study.__doc__:
  Study.__doc__ = Study.__doc__.replace("{driver_only}",
                                        ", ".join(DRIVER_ONLY))


class _Caller:
  """The evaluator of a study: its caller, who evaluates and tells. It
  takes part in early stopping (its trials report); the loop never calls
  it."""
  takes_trial = True

  def evaluate(self, config, trial_id, seed, trial=None):
    raise GraphNasError("a study's trials are evaluated by its caller "
                        "(ask and tell)")


class StudyView(_Queries):
  """A study's folder opened to read (api.load_study): the trials, the
  best, the data frame; it writes nothing in the folder, so a running
  study's folder or a read-only one opens too. Each query reads the store
  afresh."""

  def __init__(self, out_dir: str):
    from graph_nas.search import run_folder
    from graph_nas.search.store import TrialStore
    self.out_dir = os.fspath(out_dir)
    path = os.path.join(self.out_dir, run_folder.DB_NAME)
    if not os.path.isfile(path):
      raise GraphNasError(f"no study here: {run_folder.DB_NAME} is "
                          "missing", source=self.out_dir)
    self._path = path
    self._open = TrialStore
    with TrialStore(path, read_only=True) as store:
      self.run_info = store.get_meta("run_info") or {}
      self.identity = store.get_meta("identity") or {}

  def _store(self):
    # A fresh read each time: a running study's new trials show.
    store = getattr(self, "_current", None)
    if store is not None:
      store.close()
    self._current = self._open(self._path, read_only=True)
    return self._current

  def close(self) -> None:
    store = getattr(self, "_current", None)
    if store is not None:
      store.close()
      self._current = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def __del__(self):
    self.close()

  def __repr__(self):
    return f"StudyView({self.out_dir!r})"


def load_study(out_dir: str) -> StudyView:
  """A study's (or any search's) folder, read-only: .trials,
  .best_trial, .best_config, .best_value, .trials_dataframe(). Works on a
  finished or running search and on a read-only folder."""
  return StudyView(out_dir)

