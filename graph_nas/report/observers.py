"""What a run shows, written as it goes: the search's report observers.

The search loop (graph_nas.search.loop.Search) imports nothing of the
reports; its front ends -- graph_nas.api.search, the launcher
(graph_nas.cli.launch) and the experiment runner (graph_nas.cli.experiment)
-- attach these observers (`Search(observers=...)`,
`assemble.assemble(observers=...)`) beside the progress log every search
has (graph_nas.search.observers, where the hooks are described):

- `TensorBoardLog` (with `settings.tensorboard`): tensorboard/, the
  per-trial curves and one HParams session per trial
  (graph_nas.report.hparams);
- `Reports`: what finalize() writes beside the best architecture,
  top_trials.md, rewards.png and pareto.png (graph_nas.report.tables).

TensorFlow is imported only when TensorBoard is written.
"""

import math
import os
from typing import List

from graph_nas.search.observers import Observer
from graph_nas.search.run_folder import TENSORBOARD_DIR

# TensorBoard descriptions of the per-trial curves.
_SCALAR_TEXT = {"flops": "multiply-adds of one forward pass of one image "
                         "(stored as flops)",
                "val_accuracy": "accuracy on the held-out part of the "
                                "training split",
                "params": "parameters of the child"}


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
    from graph_nas.report import tables
    return {"table": tables.write_run_reports(search.out_dir, top)["table"]}


def from_settings(settings, out_dir: str) -> List[Observer]:
  """The report observers of a search in `out_dir` with these
  SearchSettings: TensorBoard/HParams (with `settings.tensorboard`), then
  the reports. A front end passes them to the search, which tells them
  after its progress log."""
  chosen: List[Observer] = []
  if settings.tensorboard:
    chosen.append(TensorBoardLog(out_dir))
  chosen.append(Reports())
  return chosen
