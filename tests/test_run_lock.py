"""Tests of graph_nas.search.run_lock: one search per output folder."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from graph_nas.search import run_lock
from graph_nas.errors import GraphNasError
from tests import events
from tests.conftest import ROOT

# A process that takes the lock, says so, and holds it until killed (or,
# should the test die first, for 300 s: below the tests' 420 s limit).
HOLDER = """
import sys, time
from graph_nas.search.run_lock import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("LOCKED", flush=True)
time.sleep(300)
"""


def _start_holder(out_dir):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out_dir)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, cwd=ROOT)
  lines = events.Lines(proc.stdout.fileno(), "the lock holder")
  try:  # blocks until the lock is held (or the holder ends)
    lines.wait(lambda got: "LOCKED" in got, timeout=120, describe="LOCKED")
  except AssertionError as e:
    proc.kill()
    proc.wait(timeout=60)
    pytest.fail(f"holder did not start: {e} {proc.stderr.read()}")
  return proc


def _kill(proc):
  if proc.poll() is None:
    proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  proc.stdout.close()
  proc.stderr.close()


def test_second_process_is_refused_with_one_line_naming_the_holder(tmp_path):
  out = tmp_path / "run"
  holder = _start_holder(out)
  try:
    with pytest.raises(GraphNasError) as info:
      run_lock.RunLock(out).acquire()
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{out}: another search is running on this "
                          f"output folder: pid {holder.pid} on "
                          f"{socket.gethostname()}, running since "), msg
    assert "stop it first, or use another output folder" in msg
    record = run_lock.read_holder(out)
    assert record["pid"] == holder.pid
    # A refused attempt leaves the holder's lock and record alone.
    with pytest.raises(GraphNasError, match=f"pid {holder.pid} "):
      with run_lock.RunLock(out):
        pass
    assert run_lock.read_holder(out)["pid"] == holder.pid
  finally:
    _kill(holder)


def test_lock_of_a_sigkilled_process_is_taken_over(tmp_path):
  out = tmp_path / "run"
  holder = _start_holder(out)
  _kill(holder)  # SIGKILL: no cleanup ran, the stale record is still there
  assert run_lock.read_holder(out)["pid"] == holder.pid
  started = time.time()
  with run_lock.RunLock(out) as lock:
    assert lock.held
    assert time.time() - started < 5  # no waiting for a stale lock
    record = run_lock.read_holder(out)
    assert record["pid"] == os.getpid()
    assert record["hostname"] == socket.gethostname()
    assert abs(record["started"] - time.time()) < 60
  assert not lock.held
  assert run_lock.read_holder(out) is None  # released: the record is cleared


def test_second_lock_in_the_same_process_is_refused_until_released(tmp_path):
  first = run_lock.RunLock(tmp_path).acquire()
  assert first.acquire() is first  # idempotent while held
  with pytest.raises(GraphNasError, match=f"pid {os.getpid()} "):
    run_lock.RunLock(tmp_path).acquire()
  first.release()
  first.release()  # twice is fine
  with run_lock.RunLock(tmp_path) as second:
    assert second.held
  # The lock file stays (deleting it would race), empty when not held.
  assert (tmp_path / run_lock.LOCK_NAME).read_text() == ""


def test_lock_outlives_its_object_and_ends_with_its_process(tmp_path):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  # The RunLock object is dropped at once; the lock must hold regardless
  # until the process ends (never released by hand).
  code = ("import gc, sys\nfrom graph_nas.search.run_lock import RunLock\n"
          "from graph_nas.errors import GraphNasError\n"
          "RunLock(sys.argv[1]).acquire()\ngc.collect()\n"
          "try:\n  RunLock(sys.argv[1]).acquire()\n"
          "except GraphNasError:\n  print('REFUSED')\n")
  proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                        check=True, env=env, cwd=ROOT, timeout=120,
                        capture_output=True, text=True)
  assert proc.stdout.strip() == "REFUSED", proc.stdout + proc.stderr
  with run_lock.RunLock(tmp_path):
    pass


def test_folder_that_cannot_be_created_is_a_clear_error(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a folder")
  with pytest.raises(GraphNasError, match="cannot create the lock file"):
    run_lock.RunLock(blocker / "run").acquire()
