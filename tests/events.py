"""Events a test waits on instead of sleeping: lines a process writes.

A test that must act at a point of another process (kill the search once
trial 40 is stored, shut a pool down while its trial runs) waits for a
line that process writes when it gets there -- a log line on its stderr,
a line its evaluator prints, a line on a named pipe (`Fifo`) -- and
blocks on the pipe (select) with a deadline; nothing polls on a clock.
`wait_ended` waits for processes to end the same way (a pidfd each).

Imports neither TensorFlow nor graph_nas, so evaluators in spawned worker
processes may call `emit`.
"""

import os
import re
import select
import time

# Where an evaluator in another process writes its events (a Fifo's path).
EVENTS_ENV = "GRAPH_NAS_TEST_EVENTS"


class Lines:
  """The lines read so far from a pipe's file descriptor, and a wait for
  more. `fd` is read with os.read (no buffering hides a line from
  select)."""

  def __init__(self, fd: int, what: str):
    self.fd, self.what = fd, what
    self.lines = []
    self.stamps = []  # when each line was read (time.monotonic())
    self._partial = b""
    self.eof = False

  def _read(self, timeout: float) -> bool:
    """Reads what is there within timeout; False when nothing came."""
    ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
    if not ready:
      return False
    chunk = os.read(self.fd, 1 << 16)
    if not chunk:
      self.eof = True
      return False
    *done, self._partial = (self._partial + chunk).split(b"\n")
    self.lines += [l.decode("utf-8", "replace") for l in done]
    self.stamps += [time.monotonic()] * len(done)
    return True

  def wait(self, until, timeout: float, describe: str):
    """Blocks until until(lines) is true (checked at every line that
    arrives) and returns its value; fails, with the last lines read, when
    the pipe ends or timeout seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
      got = until(self.lines)
      if got:
        return got
      if self.eof:
        self._fail(f"{self.what} ended before {describe}")
      left = deadline - time.monotonic()
      if left <= 0:
        self._fail(f"no {describe} from {self.what} within {timeout:g} s")
      self._read(left)

  def count(self, pattern: str, n: int, timeout: float, describe: str):
    """Waits for n lines that match the regex `pattern`; the indices of
    the matching lines read so far (n or more)."""
    regex = re.compile(pattern)

    def enough(lines):
      found = [i for i, line in enumerate(lines) if regex.search(line)]
      return found if len(found) >= n else None
    return self.wait(enough, timeout, describe)

  def _fail(self, message):
    tail = "\n".join(self.lines[-20:])
    raise AssertionError(f"{message}; its last lines:\n{tail}")


class Fifo(Lines):
  """A named pipe at `path` that evaluators in other processes `emit`
  lines to. The test holds it open for reading and writing, so it never
  sees an end and a writer's open never blocks."""

  def __init__(self, path):
    self.path = str(path)
    os.mkfifo(self.path)
    super().__init__(os.open(self.path, os.O_RDWR | os.O_NONBLOCK),
                     f"the event pipe {self.path}")

  def close(self):
    os.close(self.fd)


def emit(path, line: str) -> None:
  """Writes one line to the Fifo at `path` (a line under 4 KiB arrives
  whole, even when several processes write at once)."""
  fd = os.open(str(path), os.O_WRONLY | os.O_NONBLOCK)
  try:
    os.write(fd, (line + "\n").encode())
  finally:
    os.close(fd)


def wait_ended(pids, timeout: float):
  """Waits until every process in pids has ended (a zombie has ended), at
  most timeout seconds (0: a look, no wait); the pids still running then.
  Linux (a pidfd per process: readable once it has ended)."""
  fds = {}
  try:
    for pid in pids:
      try:
        fds[os.pidfd_open(pid)] = pid
      except ProcessLookupError:
        pass  # already ended and reaped
    deadline = time.monotonic() + timeout
    while fds:
      ready, _, _ = select.select(list(fds), [], [],
                                  max(0.0, deadline - time.monotonic()))
      for fd in ready:
        os.close(fd)
        del fds[fd]
      if time.monotonic() >= deadline:
        break
    return sorted(fds.values())
  finally:
    for fd in fds:
      os.close(fd)
