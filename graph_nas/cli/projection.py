"""What a search will cost on this machine, and a quiet start on a CPU.

- `projection_lines` / `SearchProjection`: after the first child has
  trained a while, one line projects the time of a child and of the whole
  search on this device (trials x that child's training time / workers);
  a CPU search projected far beyond a day gets a line naming the CPU-sized
  space and the demo. `SearchProjection` is a child-trainer observer
  (graph_nas.child.trainer.ChildTrainer.observers).
- `skip_absent_gpu_probe` (graph_nas.devices, re-exported): on a machine
  without any accelerator, TensorFlow's CUDA probe (an error-level
  `failed call to cuInit` line) is skipped.

No TensorFlow import here: the launcher calls skip_absent_gpu_probe before
TensorFlow is first imported.
"""


from absl import logging

from graph_nas.durations import rough_duration  # noqa: F401  (re-exported)

# The machine's accelerators, and TensorFlow's quiet start without one:
# graph_nas.devices (below the API, which calls it too), re-exported.
from graph_nas.devices import (  # noqa: E402,F401
    cpu_only_machine, skip_absent_gpu_probe)


# A projected search longer than this on a CPU gets the advice line.
ADVICE_AFTER_S = 3 * 86400
_CPU_SPACES = ("cifar_cpu", "cifar_cpu_linear")
_DEMO = ("bash launch/cifar_cpu_demo.sh: 50 architectures, screened "
         "and stopped early, about 15 minutes on 2 cores")


def projection_lines(progress, trials, max_trials, workers=1, device="CPU",
                     space_name="", early_stopping=False):
  """The projection line and, for a CPU search far beyond a day, the
  advice line, from the first child's `progress` (a
  graph_nas.child.trainer.Progress): trials (still to run) x that child's
  training time / workers (with `early_stopping`, an upper bound: most
  children train part of their budget)."""
  child_s = progress.elapsed_s + (progress.eta_s or 0.0)
  search_s = child_s * trials / max(1, workers)
  which = (f"{trials:,} trials" if trials == max_trials else
           f"the remaining {trials:,} of {max_trials:,} trials")
  measured = (f"its {progress.total:,} steps" if progress.finished else
              f"its first {progress.step:,} of {progress.total:,} steps")
  lines = [f"projected: {rough_duration(child_s)} per child, "
           f"{rough_duration(search_s)} for {which} on {workers} {device} "
           f"worker{'s' if workers != 1 else ''} (rough: trials x "
           f"{progress.label}'s training time / workers; measured over "
           f"{measured}, {progress.images_per_s:,.0f} images/s"
           + ("; at most: early stopping trains most children only part "
              "of their budget)" if early_stopping else ")")]
  if device == "CPU" and search_s > ADVICE_AFTER_S:
    if space_name in _CPU_SPACES:
      how = ("this is the CPU-sized space already: cut the budget "
             "(--max_trials, --epochs, --train_examples) as the demo does "
             f"({_DEMO})")
    else:
      how = ("search the CPU-sized space (--space=protos/cifar_cpu.textproto"
             f", a child in seconds) or run the demo ({_DEMO})")
    lines.append(f"{rough_duration(search_s)} is far beyond a day on this "
                 f"CPU; to try graph-nas here, {how}")
  return lines


class SearchProjection:
  """A child-trainer observer (ChildTrainer.observers) that logs the
  projection_lines once: at the first Progress at least `min_seconds` into
  a child's training with a known speed, or at the end of the first
  child's training if that comes sooner."""

  def __init__(self, trials, max_trials, workers=1, device="CPU", *,
               space_name="", min_seconds=30.0, early_stopping=False):
    self.args = (trials, max_trials, workers, device, space_name,
                 early_stopping)
    self.min_seconds = min_seconds
    self.lines = None  # the lines once logged

  def __call__(self, progress):
    if self.lines is not None:
      return
    if not progress.finished and (progress.eta_s is None or
                                  progress.elapsed_s < self.min_seconds):
      return
    self.lines = projection_lines(progress, *self.args)
    logging.info("%s", self.lines[0])
    for line in self.lines[1:]:
      logging.warning("%s", line)
