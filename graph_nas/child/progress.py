"""A child's training progress: the progress line, the ETA and the observers.

What it holds: `Progress` (where a child's training stands, as the
trainer's observers see it), `format_duration` (the durations of the
progress line) and `ProgressClock` (times one child's training loop and
reports its progress). graph_nas.child.trainer uses the clock and
re-exports `Progress` and `format_duration`.

Every ``settings.progress_every_s`` a child logs a line with its step,
speed and the ETA of its training (``trial 3: step 41/7020, 80 images/s,
ETA 2h55m, 31s elapsed``); each such moment, and the end of the training,
is also handed as a `Progress` to every callable in
``ChildTrainer.observers`` (the launcher projects the whole search's time
from the first child this way, graph_nas.cli.projection).
"""

import dataclasses
import time

from absl import logging

from graph_nas.durations import format_duration  # noqa: F401  (re-exported)


@dataclasses.dataclass(frozen=True)
class Progress:
  """Where a child's training stands, as its observers see it.

  step of total training steps are done; elapsed_s since the training
  started (the first step, which traces the train function, included);
  images_per_s over the steps after the first (0.0 while only the first is
  done); eta_s: the rest of the training at that speed (None while the
  speed is unknown, 0.0 at the end).
  """
  label: str
  step: int
  total: int
  elapsed_s: float
  images_per_s: float
  eta_s: float | None

  @property
  def finished(self) -> bool:
    return self.step >= self.total

  def line(self) -> str:
    """The progress line: 'trial 3: step 41/7020, 80 images/s, ETA 2h55m,
    31s elapsed'."""
    eta = "unknown" if self.eta_s is None else format_duration(self.eta_s)
    return (f"{self.label}: step {self.step}/{self.total}, "
            f"{self.images_per_s:.0f} images/s, ETA {eta}, "
            f"{self.elapsed_s:.0f}s elapsed")


class ProgressClock:
  """Times one child's training loop and reports its progress.

      clock = ProgressClock(label, total, batch_size, every_s, observers)
      ...                       # after each call into TensorFlow:
      clock.step_done(done)     # the steps done so far
      clock.finish()            # after the last step

  The clock starts when it is made (just before the first step); the
  first `step_done` marks the end of the first step, which traces the
  train function, so the speed leaves that step out. Every `every_s`
  seconds (never when 0) before the end, `step_done` logs the progress line
  and hands the Progress to the observers; `finish` hands them the last
  one (step total, ETA 0) without a line.

  Times (time.perf_counter()): `start`, `first` (the first step's end) and
  `end` (set by `finish`).
  """

  def __init__(self, label, total, batch_size, every_s, observers):
    self.label = label
    self.total = total
    self.batch_size = batch_size
    self.every_s = every_s
    self.observers = observers
    self.start = self._last = time.perf_counter()
    self.first = None
    self.end = None

  def step_done(self, done):
    now = time.perf_counter()
    if self.first is None:
      self.first = now
    if (self.every_s and now - self._last >= self.every_s and
        done < self.total):
      self._report(done, now - self.start, now - self.first, True)
      self._last = now

  def finish(self, done=None):
    """The end of the training: after `done` steps (default: all; fewer
    for a child stopped early)."""
    self.end = time.perf_counter()
    self._report(self.total if done is None else done,
                 self.end - self.start, self.end - self.first, False)

  def _report(self, done, elapsed, since_first, log):
    """The child's Progress: logged as the progress line when `log`, and
    handed to the observers. since_first: seconds since the first step
    ended (the speed leaves out that step: it traces the function)."""
    total = self.total
    rate = ((done - 1) * self.batch_size / since_first
            if done > 1 and since_first > 0 else 0.0)
    eta = ((total - done) * self.batch_size / rate if rate > 0 else
           (0.0 if done >= total else None))
    progress = Progress(self.label, done, total, elapsed, rate, eta)
    if log:
      logging.info("%s", progress.line())
    for observe in self.observers:
      observe(progress)
