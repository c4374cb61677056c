"""Picklable evaluators for tests/test_executors.py.

They live in a module of their own that imports neither TensorFlow nor
graph_nas.search, so a spawned worker process starts in a fraction of a
second even on a busy machine. Each records every attempt at a trial in a
folder (one file per attempt), so tests can tell "ran once and failed" from
"ran, died, and was silently run again".
"""

import collections
import os
import pathlib
import signal
import time

from tests import events

Result = collections.namedtuple("Result", "status reward metrics reason")


def _attempt(folder, trial_id):
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  (folder / f"attempt-{trial_id}-{os.getpid()}").write_text("")


def attempts(folder, trial_id):
  """How many times trial_id was started."""
  return len(list(pathlib.Path(folder).glob(f"attempt-{trial_id}-*")))


class PidEvaluator:
  """Scores 0.5 and reports the process it ran in."""

  def evaluate(self, config, trial_id, seed):
    del config, trial_id
    return Result("ok", 0.5, {"pid": os.getpid(), "seed": seed}, "")


class ThreadsEvaluator:
  """Scores 0.5 and reports the TensorFlow thread variables it started
  with."""

  def evaluate(self, config, trial_id, seed):
    del config, trial_id, seed
    return Result("ok", 0.5, {k: os.environ.get(k) for k in (
        "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
        "OMP_NUM_THREADS")}, "")


class KillOnceEvaluator:
  """SIGKILLs its own worker process on `trial`, the first time only.

  With `overlap_with` set, that trial says it runs (the file
  running-<id>, and the line "running <id>" on the tests/events.py pipe
  `events` when given) and then holds until the test writes the file
  "release" (at most `timeout` seconds); `trial` first waits until
  running-<overlap_with> exists, so it dies while the other one runs.
  """

  def __init__(self, trial, folder, overlap_with=None, events=None,
               timeout=300.0):
    self.trial, self.folder = trial, str(folder)
    self.overlap_with, self.events = overlap_with, events
    self.timeout = timeout

  def _wait_for(self, name):
    path = pathlib.Path(self.folder) / name
    deadline = time.time() + self.timeout
    while not path.exists():
      if time.time() > deadline:
        raise TimeoutError(f"{name} never appeared")
      time.sleep(0.02)

  def evaluate(self, config, trial_id, seed):
    del config, seed
    _attempt(self.folder, trial_id)
    killed = pathlib.Path(self.folder) / "killed"
    if trial_id == self.trial and not killed.exists():
      if self.overlap_with is not None:
        self._wait_for(f"running-{self.overlap_with}")
      killed.write_text(str(os.getpid()))
      os.kill(os.getpid(), signal.SIGKILL)
    if self.overlap_with is not None and trial_id == self.overlap_with:
      (pathlib.Path(self.folder) / f"running-{trial_id}").write_text("")
      if self.events:
        events.emit(self.events, f"running {trial_id}")
      self._wait_for("release")
    return Result("ok", 0.25, {"pid": os.getpid()}, "")


class ExitEvaluator:
  """Ends its worker with os._exit(3) on `trial` (no result sent)."""

  def __init__(self, trial):
    self.trial = trial

  def evaluate(self, config, trial_id, seed):
    del config, seed
    if trial_id == self.trial:
      os._exit(3)
    return Result("ok", 1.0, {}, "")


class UnpicklableMetricsEvaluator:
  """Returns a metric that cannot travel back to the driver."""

  def evaluate(self, config, trial_id, seed):
    del config, trial_id, seed
    return Result("ok", 1.0, {"lock": __import__("threading").Lock()}, "")
