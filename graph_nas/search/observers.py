"""What watches a search: the hooks, and the progress log.

The loop (graph_nas.search.loop.Search) only proposes, evaluates, stores
and updates; it tells its observers (`Search.observers`: the progress log
of `from_settings`, then those the front end attached with
`Search(observers=...)`) what happened:

| hook | when |
|---|---|
| `on_start(search)` | `run()` begins (a resume's checkpoint is loaded) |
| `on_trial(search, row)` | a trial is stored (`TrialStore.trial` row); `search.best` counts it |
| `on_update(search, stats)` | the algorithm learned (what `Algorithm.update` returned; {} for an async update with no usable trial) |
| `on_end(search)` | `run()` reached max_trials (its timing is stored) |
| `on_finalize(search, top)` | `finalize()`: returns entries of its result |
| `on_close(search)` | `close()` |

An observer may read the search's `settings`, `space`, `store`,
`out_dir`, `best` (best reward so far, -inf before a success), `t_start`
(when this `run()` began) and `evaluated` (trials stored by it).

What a run shows besides its log -- TensorBoard curves and HParams
sessions, top_trials.md and the plots -- is written by observers of the
reports package (graph_nas.report.observers), which the front ends
(graph_nas.api, the launcher, the experiment runner) attach: the search
imports nothing of the reports.
"""

import math
import time
from typing import Dict, List, Optional

from absl import logging

from graph_nas.durations import format_duration


class Observer:
  """Watches a Search; every hook does nothing unless overridden."""

  def on_start(self, search) -> None:
    """run() begins."""

  def on_trial(self, search, row: Dict) -> None:
    """A trial was stored."""

  def on_update(self, search, stats: Dict) -> None:
    """The algorithm updated."""

  def on_end(self, search) -> None:
    """run() finished."""

  def on_finalize(self, search, top: int) -> Dict:
    """finalize(): entries for its result."""
    return {}

  def on_close(self, search) -> None:
    """The search is closed."""


def trial_label(trial_id: int, max_trials: Optional[int]) -> str:
  """'trial 24 (25 of 30)': the trial's id in the store (as the tables,
  TensorBoard and the HTML report name it), then how far the search is
  ('trial 24' when the search has no set end: a Study's ask and tell)."""
  if max_trials is None:
    return f"trial {trial_id}"
  return f"trial {trial_id} ({trial_id + 1} of {max_trials})"


class ProgressLog(Observer):
  """The log lines: resuming, and one per trial (every log_every-th, every
  failure and the last) with the best so far and the ETA. A trial is named
  by its id in the trial store (:func:`trial_label`)."""

  def on_start(self, search):
    if search.store.count():
      logging.info("resuming %s: %d trials in the store, %d updates done",
                   search.out_dir, search.store.count(),
                   search.algorithm.num_updates)

  def on_trial(self, search, row):
    s = search.settings
    tid = row["trial_id"]
    ok = row["status"] == "ok"
    # A search driven by its caller (a Study) has no set end: no ETA.
    planned = getattr(search, "planned_trials", s.max_trials)
    per_trial = (time.time() - search.t_start) / max(search.evaluated, 1)
    eta = per_trial * ((planned or tid + 1) - tid - 1)
    if s.timeout_minutes:  # no new child after it
      eta = min(eta, max(0.0, 60 * s.timeout_minutes -
                         (time.time() - search.t_start)))
    if tid % s.log_every == 0 or not ok or tid == (planned or 0) - 1:
      what = (f"reward {row['reward']:.4f}" if ok
              else f"FAILED ({row['reason'][:120]})")
      fraction = row.get("budget_fraction")
      if ok and fraction is not None and fraction < 1:
        what += f" (stopped at {_share(fraction)} of its budget)"
      stopped = (f"  {search.stopped} stopped early"
                 if search.table is not None else "")
      if getattr(search, "screen", None) is not None:
        stopped += f"  {search.screened} screened out"
      best = (f"{search.best:.4f}" if math.isfinite(search.best) else
              "- (no full-budget child yet)")
      eta = f"  ETA {format_duration(eta)}" if planned else ""
      logging.info("%s %s  best %s  %.1fs%s%s",
                   trial_label(tid, planned), what, best,
                   row["seconds"], eta, stopped)


def _share(fraction: float) -> str:
  """0.25 -> '1/4' (a rung's share as the settings write it)."""
  import fractions
  return str(fractions.Fraction(fraction).limit_denominator(64))


def from_settings(settings, out_dir: str) -> List[Observer]:
  """The observers every search has: the progress log. (What the front
  ends attach besides -- TensorBoard/HParams, the reports -- is
  graph_nas.report.observers'.)"""
  del settings, out_dir  # the progress log reads them from the search
  return [ProgressLog()]
