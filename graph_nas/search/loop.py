"""The search loop: propose, decode, evaluate, store, update, checkpoint.

The loop knows only interfaces: a SearchSpace (decode), an Algorithm
(propose / update / save / load), an Evaluator (config -> EvalResult) and
the TrialStore. The same loop runs the toy tasks and the image searches.

Durability and resume. Trial i of batch b has id b * walks_per_update + i.
Every finished trial is committed to SQLite at once. After each update the
algorithm's whole state (controller weights, optimizer slots, baseline, PQT
queue, random state, number of updates) is written atomically to one file.
Rerunning on the same output folder loads that checkpoint; the batch that
was interrupted is proposed again from the same state -- hence the same
walks for a seeded run -- and trials of it already in the store are reused,
not run again. Each trial's own training seed is `seed + trial_id`; it
fixes everything random about the child (graph_nas.child.trainer), so a
resumed search evaluates what an uninterrupted one would have (bit for bit
with the trainer's `deterministic` setting).

No work done twice: a walk whose decoded config was already evaluated
successfully in this search is not evaluated again (`reuse_results`); the
stored result is recorded for the new trial, marked `cached_from`.

The run's identity (space, algorithm, seed, walks per update, and the
evaluator's budget: data, training budget, recipe) is stored with the
first trial; resuming with a different identity is refused with an
IdentityMismatch naming the setting that differs.

Messages name settings by their Python names (SearchSettings fields,
budget entries); the launcher re-words them with its flags
(graph_nas.launch).

One trial path for both update policies: every proposed walk becomes a
TrialJob (_job); one that needs no evaluation -- a walk that does not
decode (a failed trial, with the reason) or an architecture evaluated
before -- is settled at once (_settle); the others go to the executor.

Early stopping (graph_nas.search.halving; `rungs` / `eta`). Every job to
evaluate carries the rungs and a stable name (`t<trial id>` in a sync
search, `a<run>-<n>` in an async one, whose ids are given on storing); an
evaluator that takes part reports at each rung and the loop answers
(`_ask`): the score and the decision are stored (the `rungs` table) before
the child hears it, so a killed search keeps every decided rung, and a
resumed sync trial that reports at a rung decided before gets that same
decision (it trains again from its start: children keep no weights between
runs). A stopped child is stored with its score at the rung it reached
(`rung`, `budget_fraction` < 1); the algorithm learns from
`RungTable.learning_reward` (that score plus the median gain to the full
budget); the best trial and the best child come from full-budget trials
only.

Queued architectures (`enqueue`: a warm start) are run before the
algorithm's proposals, in order; each is marked taken in the store when
its trial is stored, so a resumed search runs the ones not yet stored.
(A sync batch interrupted after one of them was stored is proposed again
with the algorithm's walk in its place; the stored trial is kept.)

What watches the loop are observers (graph_nas.search.observers), told of
the start, each stored trial, each update, the end, finalize and close:
the progress log every search has, then those its front end attaches
(`observers=`; the TensorBoard curves and HParams sessions and the reports
are graph_nas.report.observers', which this package does not import).
"""

import dataclasses
import json
import math
import os
import time
from typing import Dict, Optional, Protocol, Sequence

from absl import logging

from graph_nas.search import executors
from graph_nas.search import halving
from graph_nas.search import observers as observers_lib
from graph_nas.search import run_folder
from graph_nas.search import screening
from graph_nas.search.algorithms import Algorithm
from graph_nas.errors import (GraphNasError, IdentityMismatch, Naming,
                              SettingsFault)
from graph_nas.results import EvalResult
from graph_nas.search.settings import SearchSettings, identity_fields
from graph_nas.space import SearchSpace, fingerprint
from graph_nas.search.store import TrialStore

# TENSORBOARD_DIR: lent as graph_nas.search.TENSORBOARD_DIR (observers use it).
from graph_nas.search.run_folder import (  # noqa: F401
    BEST_NAME, CHECKPOINT_NAME, DB_NAME, TENSORBOARD_DIR)


class Evaluator(Protocol):
  """Scores one decoded architecture config."""

  def evaluate(self, config: dict, trial_id: int, seed: int) -> EvalResult:
    ...


class SearchStopped(GraphNasError):
  """The search stopped before max_trials (e.g. too many failures)."""


class TooManyFailures(SettingsFault, SearchStopped):
  """max_consecutive_failures trials in a row failed."""

  def __init__(self, failures: int, limit: int, last_reason: str,
               store_path: str, first: Optional[Dict] = None):
    self.failures, self.limit = failures, limit
    self.last_reason, self.store_path = last_reason, store_path
    self.first = first  # the first failed trial of the run (a store row)
    super().__init__()

  def describe(self, naming: Naming) -> str:
    first = ""
    if self.first is not None and self.first["reason"] != self.last_reason:
      first = (f"; the first failure (trial {self.first['trial_id']}): "
               f"{self.first['reason']}")
    return (f"{self.failures} consecutive trials failed (limit "
            f"{naming.name('max_consecutive_failures')}={self.limit}); "
            f"last reason: {self.last_reason}{first}. Finished trials are "
            f"in {self.store_path}")


class Search:
  """One search in one output folder; `run()` starts or resumes it.

  `observers` (graph_nas.search.observers: the progress log, then the
  `observers` given, e.g. graph_nas.report.observers.from_settings: the
  TensorBoard/HParams log and the reports) are told what the loop does;
  `best`, `t_start` and `evaluated` are what they read of its progress."""

  def __init__(self, space: SearchSpace, algorithm: Algorithm,
               evaluator: Evaluator, out_dir: str,
               settings: SearchSettings, *, run_info: Optional[Dict] = None,
               executor=None, budget: Optional[Dict] = None,
               scorer: Optional[screening.Scorer] = None,
               observers: Sequence[observers_lib.Observer] = ()):
    """budget: what gives the evaluator's rewards their meaning (e.g.
    TrainSettings.budget_identity()); part of the run's identity.
    scorer: the screening's scorer when it is not named by
    settings.screen (a user's function; graph_nas.search.screening).
    observers: told what the loop does after the progress log (the front
    ends attach graph_nas.report.observers.from_settings: TensorBoard and
    HParams, top_trials.md and the plots)."""
    # screen="auto" made what it is here (what the run records).
    settings = screening.settle(settings, algorithm.name, evaluator)
    self.executor = executor or executors.InProcessExecutor(evaluator)
    self.space = space
    self.algorithm = algorithm
    self.evaluator = evaluator
    self.out_dir = out_dir
    self.settings = settings
    self.run_info = dict(run_info or {})
    self.budget = dict(budget or {})
    from graph_nas.search.run_lock import RunLock
    # One search per output folder: a second one ends here, naming the
    # running process; a lock left by a dead process is taken over.
    # A folder whose checkpoint and trial store disagree (a store deleted
    # or emptied, a checkpoint of another run) is refused before anything
    # in it is created or changed.
    run_folder.check_folder(out_dir)
    self._lock = RunLock(out_dir).acquire()
    self.store = TrialStore(os.path.join(out_dir, DB_NAME),
                            sync=settings.sync_store)
    self.checkpoint_path = os.path.join(out_dir, CHECKPOINT_NAME)
    self.observers = (observers_lib.from_settings(settings, out_dir) +
                      list(observers))
    # Early stopping: the rungs' scores and decisions (None: off, or an
    # evaluator that does not report).
    self.rungs = (settings.rung_shares
                  if executors.takes_part(evaluator) else ())
    self.table = (halving.RungTable(self.rungs, settings.eta)
                  if self.rungs else None)
    self.executor.ask = self._ask
    self._run_token = ""
    # Screening (graph_nas.search.screening): None when off.
    self.screen = None
    if settings.candidates_per_trial > 1 and (scorer is not None or
                                              settings.screen != "none"):
      scorer = scorer or screening.scorer_of(settings, space, evaluator)
      self.screen = screening.Screen(
          scorer, candidates_per_trial=settings.candidates_per_trial,
          explore=settings.screen_explore, seed=settings.seed,
          neighbors=settings.screen_neighbors)
    self.screened = 0  # candidates screened out by this run
    self._queued_out = {}  # queued walks running: {walk: queue position}
    self._fresh_rows: Dict[int, Dict] = {}  # _history's rows read so far

  def _notify(self, hook: str, *args):
    for observer in self.observers:
      getattr(observer, hook)(self, *args)

  # ------------------------------------------------------------- identity
  def _check_identity(self):
    """A resumed folder must hold the same search (space, algorithm, seed,
    walks per update, evaluation budget)."""
    # The declared identity settings (graph_nas.search.settings), the
    # algorithm's by the algorithm it made.
    identity = {"space": fingerprint(self.space),
                "space_name": self.space.name,
                "algorithm": self.algorithm.name,
                **{name: getattr(self.settings, name)
                   for name in identity_fields(SearchSettings)},
                "budget": self.budget}
    # Early stopping as it applies: the rungs as numbers ("1/4" is 0.25),
    # none (and no eta) for an evaluator that does not report.
    identity["rungs"] = list(self.rungs)
    identity["eta"] = self.settings.eta if self.rungs else None
    old = self.store.get_meta("identity")
    if old is None:
      self.store.set_meta("identity", identity)
      self.store.set_meta("run_info", self.run_info)
      return
    old.setdefault("budget", self.budget)  # a store from before budgets
    old.setdefault("rungs", [])  # ... from before early stopping
    old.setdefault("eta", None)
    old.setdefault("screen", "none")  # ... from before screening
    old.setdefault("candidates_per_trial", 1)
    for key, value in identity.items():
      if key == "budget":
        for name in sorted(set(value) | set(old["budget"])):
          before, now = old["budget"].get(name), value.get(name)
          if before != now:
            raise IdentityMismatch(self.out_dir, name, before, now,
                                   budget=True)
      elif old.get(key) != value:
        raise IdentityMismatch(
            self.out_dir, key, old.get(key), value,
            note="a fingerprint of the space's content" if key == "space"
            else "the space's name" if key == "space_name"
            else "as fractions of a child's budget; [] is none"
            if key == "rungs" else "")

  # ---------------------------------------------------------------- loop
  def run(self) -> Dict:
    """Runs (or resumes) the search to max_trials; returns timings."""
    extra = self.begin()
    asked = self.store.asked()
    if asked:
      raise GraphNasError(
          f"{len(asked)} trials asked through graph_nas.study.Study are "
          f"not told (trial {asked[0]['trial_id']} first): open the folder "
          "with api.Study and tell them, or use another output folder",
          source=self.out_dir)
    if self.settings.update_policy == "sync":
      self._run_sync()
    else:
      self._run_async(int(extra.get("consumed", 0)))
    return self.end()

  def begin(self) -> Dict:
    """Checks the folder's identity, loads its checkpoint and reads the
    progress so far (best, children stopped, rung decisions); tells the
    observers the run starts. Returns the checkpoint's `extra` ({} for a
    fresh algorithm). run() and the ask-and-tell driver
    (graph_nas.search.ask_tell) begin so."""
    self._check_identity()
    extra = {}
    if os.path.exists(self.checkpoint_path):
      extra = self.algorithm.load(self.checkpoint_path) or {}
    stored = self.store.trials("ok")
    self.best = max([t["reward"] for t in stored
                     if halving.trained_fully(t)], default=-math.inf)
    self.stopped = sum(1 for t in stored if not halving.trained_fully(t)
                       and t["cached_from"] is None)
    if self.table is not None:
      for r in self.store.rungs():
        self.table.add(r["job_key"], r["rung"], r["value"], r["go_on"])
    self._run_token = f"a{int(time.time() * 1000)}"
    self._timed_out = False
    self._failures = self._trailing_failures()
    self.t_start = time.time()
    self._eval_seconds = 0.0
    self._eval_spans = []  # (started, finished) of this run's evaluations
    self.evaluated = 0
    self._notify("on_start")
    return extra

  def end(self) -> Dict:
    """This run's timing, stored; tells the observers the run ended."""
    now = time.time()
    wall = now - self.t_start
    busy = _covered(self._eval_spans, self.t_start, now)
    # evaluate_s: the children's seconds summed (with parallel workers,
    # more than the wall); outside_evaluation_share: the share of the wall
    # time in which no child was being evaluated.
    timing = {"wall_s": wall, "evaluate_s": self._eval_seconds,
              "trials_evaluated": self.evaluated,
              "screened_out": self.screened,
              "outside_evaluation_share": (wall - busy) / wall
              if wall > 0 else 0.0}
    self.store.set_meta("last_run_timing", timing)
    self._notify("on_end")
    return timing

  def _job(self, walk, trial_id: int, seed: int) -> executors.TrialJob:
    """The TrialJob of a walk. A walk that does not decode gets config
    None and the reason (it is settled as a failed trial by _settle).
    trial_id < 0: provisional (async; the id is given when it is stored).
    """
    try:
      config, reason = self.space.decode(walk), ""
    except GraphNasError as e:
      config, reason = None, f"decode: {e}"
    name = (f"t{trial_id}" if trial_id >= 0 else
            f"{self._run_token}-{-1 - trial_id}")
    return executors.TrialJob(trial_id, tuple(walk), config, seed, trial_id,
                              self.algorithm.num_updates, reason,
                              rungs=self.rungs, name=name)

  # ----------------------------------------------------------- screening
  def _history(self, before: Optional[int] = None) -> screening.History:
    """The successful, freshly evaluated trials (with ids below `before`)
    and what the algorithm learns from each: what a scorer may fit."""
    # Rows are read once: a stored trial never changes (a 1,500-trial
    # screened search spent half its time re-reading them).
    ids = self.store.fresh_ok_ids()
    new = [i for i in ids if i not in self._fresh_rows]
    for r in self.store.trials_of(new):
      self._fresh_rows[r["trial_id"]] = r
    rows = [self._fresh_rows[i] for i in ids
            if before is None or i < before]
    return screening.History([r["walk"] for r in rows],
                             [r["config"] for r in rows],
                             [self._reward_of(r) for r in rows],
                             [_full_budget_seconds(r) for r in rows])

  # ------------------------------------------------------------ enqueued
  def enqueue(self, configs, source: str = "") -> int:
    """Queues known architectures (configs) to be run before the
    algorithm's proposals, in order; one already queued in this folder
    (a rerun's) is not queued again. Returns how many were queued.

    Raises:
      GraphNasError: a config that is no walk of the space, naming its
        place in `configs` (and `source`) and the first decision that
        does not fit.
    """
    from graph_nas.search.store import config_key
    known = {config_key(e["config"]) for e in self.store.enqueued()}
    walks = []
    for i, config in enumerate(configs):
      try:
        walk = self.space.walk_of(config)
      except GraphNasError as e:
        where = f"{source}: " if source else ""
        raise GraphNasError(f"{where}config #{i}: {e}") from None
      decoded = self.space.decode(walk)
      if config_key(decoded) not in known:
        known.add(config_key(decoded))
        walks.append((walk, decoded))
    for walk, decoded in walks:
      self.store.add_enqueued(walk, decoded)
    return len(walks)

  def _queued(self, n: int):
    """Up to n queued walks not yet run nor running (their positions are
    marked taken when their trials are stored)."""
    out = []
    for e in self.store.enqueued(taken=False):
      if len(out) >= n:
        break
      if e["walk"] not in self._queued_out:
        self._queued_out[e["walk"]] = e["position"]
        out.append(e["walk"])
    self.algorithm.remember(out)  # no_repeats: not proposed again
    return out

  def _propose(self, n: int, key: str, stream: int,
               before: Optional[int] = None):
    """n walks to run: queued ones first (enqueue), then the algorithm's,
    screened when screening is on."""
    queued = self._queued(n)
    if queued:
      return queued + (self._propose(n - len(queued), key, stream, before)
                       if n > len(queued) else [])
    if self.screen is None:
      return self.algorithm.propose(n)
    history = self._history(before)
    if not self.screen.ready(history):
      return self.algorithm.propose(n)
    walks = self.algorithm.propose(n * self.screen.k)
    proposed = len(walks)
    walks += self.screen.local_candidates(self.space, history, stream)
    configs = []
    for walk in walks:
      try:
        configs.append(self.space.decode(walk))
      except GraphNasError:
        configs.append(None)
    reuse = self.settings.reuse_results
    picks, rows = self.screen.choose(
        walks, configs, n, history, stream,
        known=lambda c: reuse and self.store.find_config(c) is not None)
    chosen = set(picks)
    self.algorithm.forget([w for i, w in enumerate(walks[:proposed])
                           if i not in chosen])
    self.algorithm.remember([walks[i] for i in picks if i >= proposed])
    self.store.add_screened(key, rows)
    self.screened += len(walks) - len(picks)
    return [walks[i] for i in picks]

  def _ask(self, report: halving.Report) -> bool:
    """A child's score at a rung: decided, stored, then answered."""
    if self.table is None:
      return True
    go_on = self.table.decide(report.key, report.rung, report.value)
    self.store.add_rung(report.key, report.rung, report.fraction,
                        report.value, go_on)
    return go_on

  def _settle(self, job: executors.TrialJob, batch: int) -> Optional[Dict]:
    """Stores a job that needs no evaluation and returns its row: a walk
    that does not decode is a failed trial; an architecture evaluated
    successfully before reuses that result (reuse_results), marked
    cached_from. None: the job is to be evaluated.

    A job with a provisional id takes the next trial id (and its seed)."""
    earlier = None
    if job.config is not None:
      if not self.settings.reuse_results:
        return None
      earlier = self.store.find_config(job.config)
      if earlier is None:
        return None
    if job.trial_id < 0:
      job.trial_id = job.key = self.store.count()
      job.seed = self.settings.seed + job.trial_id
    now = time.time()
    if earlier is None:
      return self._record(executors.Finished(
          dataclasses.replace(job, config={}), "failed", None, {},
          job.reason, now, now), batch)
    metrics = dict(earlier["metrics"])
    metrics["cached_from"] = earlier["trial_id"]
    return self._record(executors.Finished(
        job, "ok", earlier["reward"], metrics, "", now, now), batch,
                        cached_from=earlier["trial_id"])

  def _record(self, fin, batch: Optional[int] = None,
              cached_from: Optional[int] = None) -> Dict:
    """Stores a finished trial (own transaction), tells the observers,
    checks the failure limit."""
    job = fin.job
    if fin.fatal:
      raise SearchStopped(f"trial {job.trial_id}: {fin.reason}")
    rung = fin.metrics.get("rung") if fin.status == "ok" else None
    fraction = (fin.metrics.get("budget_fraction") if rung is not None
                else None)
    self.store.add_trial(
        trial_id=job.trial_id,
        batch=batch if batch is not None else self.algorithm.num_updates,
        walk=job.walk, config=job.config, status=fin.status,
        reward=fin.reward, seed=job.seed, started=fin.started,
        reason=fin.reason, metrics=fin.metrics, finished=fin.finished,
        cached_from=cached_from, rung=rung, budget_fraction=fraction)
    position = self._queued_out.pop(tuple(job.walk), None)
    if position is not None:
      self.store.take_enqueued(position, job.trial_id)
    if self.table is not None and job.name and cached_from is None:
      self.store.name_rungs(job.name, job.trial_id)
      if rung is not None and rung >= self.table.full:  # the full score
        self.store.add_rung(job.name, rung, 1.0, fin.reward, True,
                            job.trial_id)
        self.table.add(job.name, rung, fin.reward, True)
    self._eval_seconds += fin.finished - fin.started
    self._eval_spans.append((fin.started, fin.finished))
    self.evaluated += 1
    row = self.store.trial(job.trial_id)
    self._account(row)
    self._notify("on_trial", row)
    limit = self.settings.max_consecutive_failures
    if (row["status"] != "ok" and not self._searchers_fault(row) and
        self._failures >= limit):
      failed = self.store.trials("failed")
      raise TooManyFailures(self._failures, limit, row["reason"],
                            self.store.path, failed[0] if failed else None)
    return row

  @staticmethod
  def _searchers_fault(row) -> bool:
    """A failed trial whose walk does not decode (e.g. max_steps cut it):
    nothing was evaluated, so it says nothing of the evaluator and does not
    count toward max_consecutive_failures (the algorithm still learns
    failure_reward from it)."""
    return row["status"] != "ok" and str(row["reason"]).startswith("decode:")

  def _account(self, row):
    """The best (full-budget) reward, the children stopped early and the
    failures in a row, with `row`."""
    if self._searchers_fault(row):
      return
    if row["status"] == "ok":
      if halving.trained_fully(row):
        self.best = max(self.best, row["reward"])
      elif row.get("cached_from") is None:
        self.stopped += 1
      self._failures = 0
    else:
      self._failures += 1

  def _reward_of(self, row):
    """What the algorithm learns from a stored trial."""
    if row["status"] != "ok":
      return self.settings.failure_reward
    if self.table is not None and row.get("rung") is not None:
      return self.table.learning_reward(row["reward"], row["rung"])
    return row["reward"]

  def _out_of_time(self) -> bool:
    """timeout_minutes of this run have passed (no new child starts)."""
    limit = self.settings.timeout_minutes
    if limit and time.time() - self.t_start >= 60 * limit:
      if not self._timed_out:
        logging.info("timeout_minutes=%g reached: no new child is started",
                     limit)
      self._timed_out = True
    return self._timed_out

  def _run_sync(self):
    s = self.settings
    batch = self.algorithm.num_updates
    last_save = time.time()
    while (batch * s.walks_per_update < s.max_trials and
           not self._out_of_time()):
      first_id = batch * s.walks_per_update
      n = min(s.walks_per_update, s.max_trials - first_id)
      walks = self._propose(n, f"b{batch}", first_id, before=first_id)
      rows = {}
      for i, walk in enumerate(walks):
        trial_id = first_id + i
        row = self.store.trial(trial_id)
        if row is not None:  # finished before an interruption: reuse it
          if tuple(row["walk"]) != tuple(walk):
            logging.warning("trial %d: the resumed controller proposed %s, "
                            "the store holds %s; using the stored trial",
                            trial_id, walk, row["walk"])
          rows[trial_id] = row
          continue
        job = self._job(walk, trial_id, s.seed + trial_id)
        row = self._settle(job, batch)
        if row is None:
          self.executor.submit(job)
        else:
          rows[trial_id] = row
      while self.executor.in_flight():
        fin = self.executor.wait_any()
        rows[fin.job.trial_id] = self._record(fin, batch)
      ordered = [rows[first_id + i] for i in range(n)]
      stats = self.algorithm.update([tuple(r["walk"]) for r in ordered],
                                    [self._reward_of(r) for r in ordered])
      self._notify("on_update", stats or {})
      batch += 1
      if time.time() - last_save >= s.checkpoint_every_s or \
          batch * s.walks_per_update >= s.max_trials:
        self.algorithm.save(self.checkpoint_path,
                            extra=run_folder.checkpoint_extra(self.store))
        last_save = time.time()

  def _run_async(self, consumed: int):
    s = self.settings
    # Trials stored after the last update (a crash before it): learn from
    # them first. Trials that were in flight are simply proposed again.
    buffer = [(r, 0) for r in self.store.trials() if r["trial_id"] >=
              consumed]
    submitted = 0
    while True:
      while (self.executor.in_flight() < self.executor.capacity and
             self.store.count() + self.executor.in_flight() < s.max_trials
             and not self._out_of_time()):
        walk = self._propose(1, f"{self._run_token}-{submitted}",
                             self.store.count() * 1009 + submitted)[0]
        provisional = -1 - submitted  # the real id is given when stored
        submitted += 1
        # The seed the trial gets if it finishes in submission order.
        seed = s.seed + self.store.count() + self.executor.in_flight()
        job = self._job(walk, provisional, seed)
        row = self._settle(job, self.algorithm.num_updates)
        if row is not None:
          buffer.append((row, 0))
          if len(buffer) >= s.walks_per_update:
            self._async_update(buffer, row["trial_id"] + 1)
            buffer = []
          continue
        self.executor.submit(job)
      if not self.executor.in_flight():
        break
      fin = self.executor.wait_any()
      fin.job.trial_id = self.store.count()
      row = self._record(fin)
      staleness = self.algorithm.num_updates - fin.job.proposed_at_update
      buffer.append((row, staleness))
      if len(buffer) >= s.walks_per_update or (
          self.store.count() >= s.max_trials and
          not self.executor.in_flight()):
        self._async_update(buffer, row["trial_id"] + 1)
        buffer = []
    if buffer:
      self._async_update(buffer, self.store.count())

  def _async_update(self, buffer, consumed):
    usable = [r for r, staleness in buffer
              if staleness <= self.settings.max_staleness]
    stats = {}
    if usable:
      stats = self.algorithm.update([tuple(r["walk"]) for r in usable],
                                    [self._reward_of(r) for r in usable])
    else:
      self.algorithm.num_updates += 1
    self._notify("on_update", stats or {})
    self.algorithm.save(self.checkpoint_path, extra=run_folder.checkpoint_extra(
        self.store, consumed=consumed))

  def _trailing_failures(self) -> int:
    n = 0
    for row in reversed(self.store.trials()):
      if row["status"] == "ok":
        break
      n += 0 if self._searchers_fault(row) else 1
    return n

  # ------------------------------------------------------------- finish
  def finalize(self, top: int = 10, retrain: bool = True) -> Dict:
    """Reports (the observers': top table, plots), best architecture JSON,
    retrained best child."""
    rows = self.store.best(top)
    if not rows:
      failed = self.store.trials("failed")
      if self.store.trials("ok"):
        why = (" trained to the full budget (every successful one was "
               "stopped early)")
      elif failed:
        why = (f": all {len(failed)} trials failed; the first (trial "
               f"{failed[0]['trial_id']}): {failed[0]['reason']}")
      else:
        why = ""
      raise SearchStopped(f"no successful trial{why} (trials in "
                          f"{self.store.path})")
    reported = {}
    for observer in self.observers:
      reported.update(observer.on_finalize(self, top) or {})
    best = rows[0]
    best_info = {"trial_id": best["trial_id"], "reward": best["reward"],
                 "walk": list(best["walk"]), "config": best["config"],
                 "metrics": best["metrics"], "space": self.space.source}
    with open(os.path.join(self.out_dir, BEST_NAME), "w",
              encoding="utf-8") as f:
      json.dump(best_info, f, indent=2, default=str)
    final = {}
    if retrain and hasattr(self.evaluator, "finalize"):
      final = self.evaluator.finalize(best["config"], os.path.join(
          self.out_dir, "best_child"), self.settings.seed) or {}
      if final:
        self.store.set_meta("best_child", final)
    return {**reported, "best": best_info, "final": final}

  def close(self):
    self.executor.shutdown()
    self._notify("on_close")
    self.store.close()
    self._lock.release()


def _full_budget_seconds(row) -> Optional[float]:
  """A stored trial's wall seconds for its whole budget: its seconds over
  the share of the budget it trained (a child stopped early at 1/4 of its
  budget in 10 s: 40 s). None where unknown."""
  seconds, share = row.get("seconds"), row.get("budget_fraction")
  if seconds is None or not math.isfinite(seconds) or seconds <= 0:
    return None
  if share is None or not share > 0:
    share = 1.0
  return float(seconds) / min(float(share), 1.0)


def _covered(spans, start: float, end: float) -> float:
  """Seconds of [start, end] covered by at least one of the spans."""
  total, reach = 0.0, start
  for a, b in sorted(spans):
    a, b = max(a, reach), min(b, end)
    if b > a:
      total += b - a
      reach = b
  return total
