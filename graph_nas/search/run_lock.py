"""One search per output folder: a lock taken when a search starts.

Two searches writing the same folder corrupt each other's ``trials.sqlite``
and ``checkpoint.npz``. A search therefore holds :class:`RunLock` on its
output folder for as long as it runs::

  with RunLock(out_dir):
    ...  # the whole search

or ``lock = RunLock(out_dir).acquire()`` ... ``lock.release()``.

The lock is ``flock(LOCK_EX | LOCK_NB)`` on the file ``search.lock`` in the
folder, held through a file descriptor kept open for the life of the lock.
The kernel drops it when the process ends in any way (SIGKILL, out of
memory, a crash), so a lock left by a dead search is simply taken over;
nothing stale has to be cleaned up by hand. The file also holds, as one
JSON line, who holds the lock (pid, host, start time, command), so that a
second search on the folder stops at once with one line naming the running
one. The file is never deleted (deleting a lock file races with a process
that has it open); an empty file means "not held".

The descriptor is close-on-exec, so a process started with ``spawn`` or
``exec`` (the process-pool workers) does not hold the lock; a child made by
a bare ``fork()`` shares the open file and keeps the lock until it ends
too. Network file systems: Linux emulates flock with POSIX locks on NFS; on
a file system without locking, acquire() raises.
"""

import datetime
import errno
import json
import os
import socket
import sys
import time
from typing import Optional

try:
  import fcntl
except ImportError:  # pragma: no cover - not a POSIX system
  fcntl = None

from graph_nas.durations import coarse_duration
from graph_nas.errors import GraphNasError

from graph_nas.search.run_folder import LOCK_NAME  # noqa: E402

# A holder writes its record right after taking the lock; a refused process
# waits this long for the record to appear before it names "unknown".
_RECORD_WAIT_S = 2.0


def _describe(record: Optional[dict]) -> str:
  """'pid 123 on host, running since 2024-05-01 12:00:00 (5m ago): cmd'."""
  if not record:
    return "a process that has not yet said who it is"
  pid = record.get("pid", "?")
  host = record.get("hostname", "?")
  text = f"pid {pid} on {host}"
  started = record.get("started")
  if isinstance(started, (int, float)):
    when = datetime.datetime.fromtimestamp(started).strftime(
        "%Y-%m-%d %H:%M:%S")
    age = max(0, int(time.time() - started))
    text += f", running since {when} ({coarse_duration(age)} ago)"
  cmd = record.get("command")
  if cmd:
    text += f": {cmd}"
  return " ".join(text.split())  # one line, whatever the command held


class RunLock:
  """An exclusive lock on an output folder (see the module docstring).

  Args:
    out_dir: the folder; created if missing.
    name: the lock file's name in the folder.

  Attributes:
    path: the lock file.  held: whether this object holds the lock.
  """

  def __init__(self, out_dir: str, name: str = LOCK_NAME):
    self.out_dir = str(out_dir)
    self.path = os.path.join(self.out_dir, name)
    self._fd: Optional[int] = None

  @property
  def held(self) -> bool:
    return self._fd is not None

  def acquire(self) -> "RunLock":
    """Takes the lock or raises GraphNasError naming the holder.

    Returns self. Calling it again while held does nothing. The lock stays
    held until release() or the end of the process, even if this object is
    dropped (its descriptor is deliberately not closed by the garbage
    collector).
    """
    if self._fd is not None:
      return self
    if fcntl is None:  # pragma: no cover
      raise GraphNasError("cannot lock the output folder: no fcntl on this "
                          "system", source=self.out_dir)
    try:
      os.makedirs(self.out_dir, exist_ok=True)
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
      raise GraphNasError(f"cannot create the lock file {self.path}: "
                          f"{e.strerror or e}", source=self.out_dir) from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      os.close(fd)
      if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        holder = _describe(self._wait_for_record())
        raise GraphNasError(
            f"another search is running on this output folder: {holder} "
            f"(lock {self.path}); stop it first, or use another output "
            "folder", source=self.out_dir) from None
      raise GraphNasError(f"cannot lock {self.path}: {e.strerror or e}",
                          source=self.out_dir) from None
    record = {"pid": os.getpid(), "hostname": socket.gethostname(),
              "started": time.time(),
              "command": " ".join(sys.argv)[:300]}
    try:
      os.ftruncate(fd, 0)
      os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
    except OSError as e:
      os.close(fd)
      raise GraphNasError(f"cannot write the lock file {self.path}: "
                          f"{e.strerror or e}", source=self.out_dir) from None
    self._fd = fd
    return self

  def release(self) -> None:
    """Drops the lock (and empties the file). Safe to call twice."""
    fd, self._fd = self._fd, None
    if fd is None:
      return
    try:
      os.ftruncate(fd, 0)
    except OSError:
      pass
    finally:
      os.close(fd)  # closing the last descriptor drops the flock

  def _wait_for_record(self) -> Optional[dict]:
    deadline = time.monotonic() + _RECORD_WAIT_S
    while True:
      record = read_holder(self.out_dir, os.path.basename(self.path))
      if record or time.monotonic() > deadline:
        return record
      time.sleep(0.05)

  def __enter__(self) -> "RunLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()

  def __repr__(self):
    return f"RunLock({self.out_dir!r}, held={self.held})"


def read_holder(out_dir: str, name: str = LOCK_NAME) -> Optional[dict]:
  """The record the lock file holds (who holds, or last held, the lock);
  None when there is none. Says nothing of whether that process lives: only
  acquire() knows."""
  try:
    with open(os.path.join(str(out_dir), name), encoding="utf-8") as f:
      text = f.read()
  except OSError:
    return None
  try:
    record = json.loads(text.strip().splitlines()[0]) if text.strip() \
        else None
  except ValueError:
    return None
  return record if isinstance(record, dict) else None
