"""Asynchronous successive halving: stop poor children early.

Plain Python (no TensorFlow): the rungs, the decision at a rung, the reward
the algorithms learn from, and the handle a child reports through.

A search with rungs ``(1/4, 1/2)`` and ``eta = 2`` lets every child report
its score after a quarter and after half of its training budget. At each
rung the child goes on only while its score is among the best
``max(1, floor(n / eta))`` of the ``n`` scores recorded at that rung so
far, its own included (ASHA's stopping rule, Li et al. 2020, in the form of
Optuna's SuccessiveHalvingPruner; ties go on). Nothing waits for a rung to
fill: the decision is taken the moment a child reports, against the
children that reported there before it, so the in-process, process-pool
and Ray executors all keep their workers busy. A stopped child frees its
worker at once; its stored reward is its score at the rung it reached.

What the algorithms learn from (:meth:`RungTable.learning_reward`). A
stopped child's score was measured after less training than a full
child's, so the two are not on one scale. Each child's reward for the
algorithm is its score at the highest rung it reached plus the median gain
from that rung to the full budget of the children that went the whole way
(0 before any did). Within a rung the order is the scores' order (the same
offset is added to all), which is what the halving compared; across rungs
it estimates the full-budget score. The best child of a search is chosen
on full-budget results only (graph_nas.search.store.TrialStore.best).

The worker side: an evaluator that takes part gets a :class:`Trial` (the
convention of Optuna's ``trial.report`` / ``trial.should_prune``)::

    def fn(config, trial):
      for epoch in range(1, epochs + 1):
        score = train_one_epoch(...)
        trial.report(score, epoch / epochs)   # progress in (0, 1]
        if trial.should_stop():
          break                                # the loop records the rung
      return score

``report(value, progress)`` records the value at every rung the progress
has reached since the last report (one decision per rung, taken by the
driver); ``should_stop()`` tells whether the last decision was to stop.
"""

import bisect
import dataclasses
import fractions
import math
import statistics
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from graph_nas.errors import GraphNasError, SettingError

OFF = ("", "none", "off")


def parse_rungs(text) -> Tuple[float, ...]:
  """The rung fractions of a setting: "1/4,1/2" (or a sequence of numbers,
  (0.25, 0.5)) -> (0.25, 0.5); "" / "none" / "off" -> () (no early
  stopping). Raises SettingError("rungs", ...)."""
  if isinstance(text, (list, tuple)):
    text = ",".join(str(x) for x in text)
  if text is None or str(text).strip().lower() in OFF:
    return ()
  out = []
  for part in str(text).split(","):
    part = part.strip()
    try:
      value = float(fractions.Fraction(part))
    except (ValueError, ZeroDivisionError):
      raise SettingError("rungs", text, f"{part!r} is not a fraction (write "
                         "e.g. '1/4,1/2', or 'none' for no early "
                         "stopping)") from None
    if not 0 < value < 1:
      raise SettingError("rungs", text, f"{part} is not between 0 and 1 "
                         "(the full budget, 1, is always the last rung)")
    out.append(value)
  if sorted(set(out)) != out:
    raise SettingError("rungs", text, "must increase (e.g. '1/9,1/3')")
  return tuple(out)


def keep_count(n: int, eta: float) -> int:
  """How many of n scores at a rung go on: max(1, floor(n / eta))."""
  return max(1, int(math.floor(n / eta + 1e-9)))


@dataclasses.dataclass(frozen=True)
class Report:
  """One child's score at one rung, as the worker sends it to the driver."""
  key: str  # the job's stable name (graph_nas.search.loop)
  rung: int  # index into the rungs; len(rungs) is the full budget
  fraction: float  # of the child's budget trained when it was measured
  value: float


class RungTable:
  """The scores recorded at each rung, and the decisions taken on them.

  Rung len(rungs) holds the full-budget scores (recorded when a child
  finishes), used for the learning reward.
  """

  def __init__(self, rungs: Sequence[float], eta: float):
    if eta <= 1:
      raise SettingError("eta", eta, "must be > 1")
    self.rungs = tuple(rungs)
    self.eta = float(eta)
    self._values: List[List[float]] = [[] for _ in range(len(rungs) + 1)]
    # (key, rung) -> (value, go_on)
    self._records: Dict[Tuple[str, int], Tuple[float, bool]] = {}
    self._by_key: Dict[str, Dict[int, float]] = {}

  @property
  def full(self) -> int:
    """The index of the full budget."""
    return len(self.rungs)

  def recorded(self, key: str, rung: int) -> Optional[Tuple[float, bool]]:
    return self._records.get((key, rung))

  def add(self, key: str, rung: int, value: float, go_on: bool) -> None:
    """Puts a record back (resume) or records a full-budget score."""
    if (key, rung) in self._records:
      return
    self._records[(key, rung)] = (float(value), bool(go_on))
    bisect.insort(self._values[rung], float(value))
    self._by_key.setdefault(key, {})[rung] = float(value)

  def decide(self, key: str, rung: int, value: float) -> bool:
    """Records `value` at `rung` and says whether the child goes on. A
    (key, rung) decided before keeps its first decision (a resumed child
    reporting again)."""
    if not 0 <= rung < self.full:
      raise GraphNasError(f"no rung {rung} (rungs {self.rungs})")
    old = self._records.get((key, rung))
    if old is not None:
      return old[1]
    values = self._values[rung] + [float(value)]
    values.sort(reverse=True)
    cutoff = values[keep_count(len(values), self.eta) - 1]
    go_on = float(value) >= cutoff
    self.add(key, rung, value, go_on)
    return go_on

  def counts(self) -> List[int]:
    """How many children reached each rung (the last: the full budget)."""
    return [len(v) for v in self._values]

  def gain_to_full(self, rung: int) -> float:
    """Median of (full score - score at `rung`) over the children with
    both; 0.0 when none."""
    if rung >= self.full:
      return 0.0
    gains = [d[self.full] - d[rung] for d in self._by_key.values()
             if self.full in d and rung in d]
    return float(statistics.median(gains)) if gains else 0.0

  def learning_reward(self, reward: float, rung: Optional[int]) -> float:
    """What the algorithm learns from a child that reached `rung` (None:
    no halving, or the full budget) with score `reward`."""
    if rung is None or rung >= self.full:
      return reward
    return reward + self.gain_to_full(rung)


class Trial:
  """The handle an evaluator reports through (see the module docstring).

  Attributes:
    trial_id, seed: the trial's id (provisional, < 0, in an asynchronous
      search until it is stored) and training seed.
    rungs: the fractions of the budget at which a score is expected.
  """

  def __init__(self, key: str, rungs: Sequence[float],
               ask: Callable[[Report], bool], trial_id: int = -1,
               seed: int = 0):
    """ask: sends a report to the driver and returns its decision."""
    self.key, self.rungs = key, tuple(rungs)
    self.trial_id, self.seed = trial_id, seed
    self._ask = ask
    self._next = 0  # the next rung to report
    self._stop = False
    self.scores: List[float] = []  # the value reported at each rung passed
    self.progress = 0.0

  def report(self, value: float, progress: float) -> None:
    """The child's score after `progress` (0 < progress <= 1) of its
    budget. Each rung it passes since the last report is decided on this
    value; a stopped trial reports nothing more."""
    value = float(value)
    if not math.isfinite(value):
      raise GraphNasError(f"trial.report: {value} is not a finite score")
    if not 0 < progress <= 1 + 1e-9:
      raise GraphNasError(f"trial.report: progress {progress} is not in "
                          "(0, 1] (the share of the budget done)")
    if self._stop:
      return
    self.progress = max(self.progress, float(progress))
    while (self._next < len(self.rungs) and
           progress + 1e-9 >= self.rungs[self._next]):
      go_on = self._ask(Report(self.key, self._next, self.rungs[self._next],
                               value))
      self.scores.append(value)
      self._next += 1
      if not go_on:
        self._stop = True
        return

  def should_stop(self) -> bool:
    """True when a rung's decision was to stop this child."""
    return self._stop

  @property
  def rung(self) -> int:
    """The highest rung reached: len(rungs) (the full budget) unless it
    was stopped."""
    return self._next - 1 if self._stop else len(self.rungs)

  @property
  def fraction(self) -> float:
    """The share of the budget trained: the stopping rung's, else 1."""
    return self.rungs[self.rung] if self._stop else 1.0

  def outcome(self) -> Dict:
    """What the loop stores of the halving with the trial's metrics."""
    return {"rung": self.rung, "budget_fraction": self.fraction,
            "stopped_early": self._stop, "rung_scores": list(self.scores)}


def trained_fully(row) -> bool:
  """Whether a stored trial (a TrialStore row) trained its whole budget:
  no early stopping, or it went through every rung."""
  fraction = row.get("budget_fraction")
  return fraction is None or fraction >= 1.0


def takes_trial(fn) -> bool:
  """True when fn has a parameter named `trial` (it takes part)."""
  import inspect
  try:
    return "trial" in inspect.signature(fn).parameters
  except (TypeError, ValueError):
    return False
