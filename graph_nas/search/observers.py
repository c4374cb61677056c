"""What watches a search: the progress log, TensorBoard/HParams, reports.

The loop (graph_nas.search.loop.Search) only proposes, evaluates, stores
and updates; it tells its observers (`Search.observers`, built from its
settings by `from_settings`) what happened:

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

TensorFlow is imported only when TensorBoard is written.
"""

import math
import os
import time
from typing import Dict, List

from absl import logging

from graph_nas.durations import format_duration
from graph_nas.search.run_folder import TENSORBOARD_DIR

# TensorBoard descriptions of the per-trial curves.
_SCALAR_TEXT = {"flops": "multiply-adds of one forward pass of one image "
                         "(stored as flops)",
                "val_accuracy": "accuracy on the held-out part of the "
                                "training split",
                "params": "parameters of the child"}


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


def trial_label(trial_id: int, max_trials: int) -> str:
  """'trial 24 (25 of 30)': the trial's id in the store (as the tables,
  TensorBoard and the HTML report name it), then how far the search is."""
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
    per_trial = (time.time() - search.t_start) / max(search.evaluated, 1)
    eta = per_trial * (s.max_trials - tid - 1)
    if s.timeout_minutes:  # no new child after it
      eta = min(eta, max(0.0, 60 * s.timeout_minutes -
                         (time.time() - search.t_start)))
    if tid % s.log_every == 0 or not ok or tid == s.max_trials - 1:
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
      logging.info("%s %s  best %s  %.1fs  ETA %s%s",
                   trial_label(tid, s.max_trials), what, best,
                   row["seconds"], format_duration(eta), stopped)


def _share(fraction: float) -> str:
  """0.25 -> '1/4' (a rung's share as the settings write it)."""
  import fractions
  return str(fractions.Fraction(fraction).limit_denominator(64))


class TensorBoardLog(Observer):
  """tensorboard/: curves against the trial number and, once per run, the
  HParams experiment; each trial its own HParams session
  (graph_nas.report.hparams)."""

  def __init__(self, out_dir: str):
    self.logdir = os.path.join(out_dir, TENSORBOARD_DIR)
    self._writer = None
    self._hparam_names = []

  def _summary_writer(self, space):
    if self._writer is None:
      import tensorflow as tf
      from graph_nas.report import hparams
      self._writer = tf.summary.create_file_writer(self.logdir)
      self._hparam_names = hparams.write_config(self._writer, space)
    return self._writer

  def on_trial(self, search, row):
    import tensorflow as tf
    from graph_nas.report import hparams
    ok = row["status"] == "ok"
    with self._summary_writer(search.space).as_default(step=row["trial_id"]):
      if ok:
        tf.summary.scalar("reward", row["reward"])
      if math.isfinite(search.best):
        tf.summary.scalar("best_reward", search.best)
      for key in ("val_accuracy", "flops", "params"):
        if key in row["metrics"]:
          tf.summary.scalar(key, float(row["metrics"][key]),
                            description=_SCALAR_TEXT.get(key))
      tf.summary.scalar("failed", 0.0 if ok else 1.0)
    # Its own HParams session: decisions and metrics, one run folder.
    hparams.write_trial(self.logdir, row, self._hparam_names)

  def on_end(self, search):
    if self._writer is not None:
      self._writer.flush()

  def on_close(self, search):
    if self._writer is not None:
      self._writer.close()


class Reports(Observer):
  """What finalize() writes beside the best architecture: top_trials.md,
  rewards.png, pareto.png (graph_nas.report.tables); adds "table"."""

  def on_finalize(self, search, top):
    from graph_nas import report
    return {"table": report.write_run_reports(search.out_dir, top)["table"]}


def from_settings(settings, out_dir: str) -> List[Observer]:
  """A search's observers: the progress log, TensorBoard/HParams (with
  `settings.tensorboard`) and the reports, in that order."""
  chosen: List[Observer] = [ProgressLog()]
  if settings.tensorboard:
    chosen.append(TensorBoardLog(out_dir))
  chosen.append(Reports())
  return chosen
