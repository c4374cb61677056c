"""Ask and tell: the one search loop, driven by its caller.

`AskTell` drives a `graph_nas.search.Search` (the same store, lock,
identity check, algorithm, screening, early stopping, checkpoint and
observers as `Search.run`) one call at a time: `ask()` proposes an
architecture and hands it out as an `AskedTrial`; `tell()` stores its
result and lets the algorithm learn, as the loop's asynchronous update
policy does (an update after every `walks_per_update` results; a result
proposed more than `max_staleness` updates ago is stored, not learned).
Several trials may be out at once. The front door is graph_nas.study.

Durability. An asked trial is recorded at once (the store's `asked`
table, with its id, walk and seed) and the algorithm's state is
checkpointed after it, so a process that dies with trials out loses
nothing: reopening the folder hands the same trials out again, first, with
the same ids, walks and seeds, and what was told is in the store. Which
stored trials the algorithm has learned from is part of the checkpoint
(`learned`), so a result told after the last checkpoint is learned after
a reopen.

Trial ids are given when a trial is asked (`TrialStore.next_trial_id`):
they may be told in any order. An architecture evaluated before
(`reuse_results`) or a walk that does not decode is never handed out: it
is stored at once (as the loop stores it) and the next is proposed.
Queued architectures (`TrialStore.add_enqueued`, a Study's enqueue) are
handed out before the algorithm's proposals.
"""

import math
import numbers
import time
from typing import Dict, Optional

from graph_nas.errors import GraphNasError
from graph_nas.search import executors
from graph_nas.search import halving
from graph_nas.search import run_folder

# Proposals in a row that may be settled without an evaluation (repeats of
# evaluated architectures, walks that do not decode) before ask() gives up.
MAX_SETTLED_IN_A_ROW = 100


class TellError(GraphNasError):
  """A tell() that cannot be taken; nothing was changed."""


class AskedTrial:
  """An architecture handed out by `ask()`, to be evaluated by the caller.

  Attributes:
    number: the trial's id in the store (its number in the tables).
    config: the decoded architecture (a JSON-able dict).
    walk: the walk's action indices.
    seed: the seed to train it with (the search's seed + number).
    rungs: the shares of its budget at which it should `report` (early
      stopping; () when off).
  """

  def __init__(self, driver, job: executors.TrialJob, asked: float):
    self._driver, self._job, self._asked = driver, job, asked
    self.number, self.config = job.trial_id, job.config
    self.walk, self.seed, self.rungs = tuple(job.walk), job.seed, job.rungs
    self._halving = halving.Trial(job.name, job.rungs, driver.search._ask,  # pylint: disable=protected-access
                                  job.trial_id, job.seed)

  def report(self, value: float, budget_fraction: float) -> None:
    """The score after `budget_fraction` (0 < f <= 1) of the trial's
    budget; each rung passed is decided on it (graph_nas.search.halving)."""
    self._halving.report(value, budget_fraction)

  def should_stop(self) -> bool:
    """True when early stopping decided this trial ends here: tell its
    last reported score."""
    return self._halving.should_stop()

  def __repr__(self):
    return f"AskedTrial(number={self.number}, config={self.config!r})"


class AskTell:
  """Drives `search` by ask() and tell(); close() it (or the Study)."""

  def __init__(self, search):
    self.search = search
    search.planned_trials = None  # no set end: the caller drives it
    extra = search.begin()
    store = search.store
    rows = store.trials()
    if "learned" in extra:  # a Study's checkpoint
      learned = set(extra["learned"])
    elif "consumed" in extra:  # an async search's
      learned = {r["trial_id"] for r in rows
                 if r["trial_id"] < int(extra["consumed"])}
    elif extra:  # a sync search's: every batch it checkpointed
      done = search.algorithm.num_updates * search.settings.walks_per_update
      learned = {r["trial_id"] for r in rows if r["trial_id"] < done}
    else:  # a fresh algorithm learns every stored trial
      learned = set()
    self._learned = learned
    self._buffer = [(r, 0) for r in rows if r["trial_id"] not in learned]
    # Asked and not told when the folder was last closed: handed out again
    # first.
    self._again = store.asked()
    self._out: Dict[int, AskedTrial] = {}

  # ------------------------------------------------------------------ ask
  def ask(self) -> AskedTrial:
    """The next architecture to evaluate (see the module docstring)."""
    s = self.search
    if self._again:
      rec = self._again.pop(0)
      job = s._job(rec["walk"], rec["trial_id"], rec["seed"])  # pylint: disable=protected-access
      job.proposed_at_update = rec["proposed_at_update"]
      return self._hand_out(job, rec["asked"])
    for _ in range(MAX_SETTLED_IN_A_ROW):
      trial_id = s.store.next_trial_id()
      walk = s._propose(1, f"q{trial_id}", trial_id)[0]  # pylint: disable=protected-access
      position = s._queued_out.pop(tuple(walk), None)  # pylint: disable=protected-access
      if position is not None:  # enqueued: taken now, as this trial
        s.store.take_enqueued(position, trial_id)
      job = s._job(walk, trial_id, s.settings.seed + trial_id)  # pylint: disable=protected-access
      row = s._settle(job, s.algorithm.num_updates)  # pylint: disable=protected-access
      if row is not None:  # stored at once: a repeat, or no config
        self._learn(row, 0)
        continue
      now = time.time()
      s.store.add_asked(trial_id=trial_id, walk=job.walk, config=job.config,
                        seed=job.seed,
                        proposed_at_update=job.proposed_at_update)
      self._save()  # the algorithm's state after this proposal
      return self._hand_out(job, now)
    raise GraphNasError(
        f"{MAX_SETTLED_IN_A_ROW} proposals in a row were architectures "
        "evaluated before (or walks with no config): the space may be "
        "exhausted", source=s.out_dir)

  def _hand_out(self, job, asked: float) -> AskedTrial:
    trial = AskedTrial(self, job, asked)
    self._out[job.trial_id] = trial
    return trial

  # ----------------------------------------------------------------- tell
  def tell(self, trial, value=None, *, error=None,
           metrics: Optional[Dict] = None) -> Dict:
    """Stores the result of an asked trial and learns from it; returns the
    stored row. A tell that cannot be taken raises TellError and changes
    nothing."""
    s = self.search
    number = trial.number if isinstance(trial, AskedTrial) else trial
    if isinstance(trial, AskedTrial) and trial._driver is not self:  # pylint: disable=protected-access
      raise TellError(f"trial {number} was asked by another study (this "
                      f"one is {s.out_dir})")
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
      raise TellError(f"tell() takes a trial from ask() or its number, "
                      f"not {trial!r}")
    number = int(number)
    if number not in self._out:
      row = s.store.trial(number)
      if row is not None:
        told = (f"value {row['reward']}" if row["status"] == "ok" else
                f"failed: {row['reason']}")
        raise TellError(f"trial {number} was told already ({told})")
      again = [r["trial_id"] for r in self._again]
      if number in again:
        raise TellError(f"trial {number} was asked before the study was "
                        "reopened: ask() hands it out again first")
      raise TellError(f"trial {number} was not asked by this study")
    if (error is None) == (value is None):
      raise TellError(f"tell(trial {number}): give a value or error=, "
                      "exactly one")
    if error is None:
      if isinstance(value, bool) or not isinstance(value, numbers.Real) \
          or not math.isfinite(float(value)):
        raise TellError(f"tell(trial {number}, {value!r}): the value must "
                        "be a finite number (a failed trial: error=...)")
    if metrics is not None and not isinstance(metrics, dict):
      raise TellError(f"tell(trial {number}): metrics must be a dict, not "
                      f"{type(metrics).__name__}")
    asked = self._out[number]
    metrics = dict(metrics or {})
    if error is None:
      status, reward, reason = "ok", float(value), ""
      if s.table is not None:
        metrics.update(asked._halving.outcome())  # pylint: disable=protected-access
    else:
      status, reward = "failed", None
      reason = (f"{type(error).__name__}: {error}"
                if isinstance(error, BaseException) else str(error))
    fin = executors.Finished(asked._job, status, reward, metrics, reason,  # pylint: disable=protected-access
                             asked._asked, time.time())  # pylint: disable=protected-access
    row = s._record(fin, s.algorithm.num_updates)  # pylint: disable=protected-access
    del self._out[number]
    staleness = s.algorithm.num_updates - asked._job.proposed_at_update  # pylint: disable=protected-access
    self._learn(row, staleness)
    return row

  # --------------------------------------------------------------- update
  def _learn(self, row, staleness: int) -> None:
    """Buffers a stored trial; updates the algorithm after every
    walks_per_update of them (as the loop's async policy does)."""
    s = self.search
    self._buffer.append((row, staleness))
    if len(self._buffer) < s.settings.walks_per_update:
      return
    usable = [r for r, st in self._buffer
              if st <= s.settings.max_staleness]
    stats = {}
    if usable:
      stats = s.algorithm.update([tuple(r["walk"]) for r in usable],
                                 [s._reward_of(r) for r in usable])  # pylint: disable=protected-access
    else:
      s.algorithm.num_updates += 1
    self._learned.update(r["trial_id"] for r, _ in self._buffer)
    self._buffer = []
    s._notify("on_update", stats or {})  # pylint: disable=protected-access
    self._save()

  def _save(self) -> None:
    s = self.search
    s.algorithm.save(s.checkpoint_path, extra=run_folder.checkpoint_extra(
        s.store, learned=sorted(self._learned)))

  @property
  def out(self):
    """The trials asked and not told, by number."""
    return dict(self._out)

  def close(self) -> Dict:
    """Ends this run (its timing); the trials still out stay asked."""
    self._save()
    return self.search.end()
