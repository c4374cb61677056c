"""Shared by the tests that run the launcher in a subprocess and kill it."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from tests.conftest import ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
LAUNCH = [sys.executable, "-m", "graph_nas.launch"]


def launch(args, **kw):
  """Runs the launcher to its end; the CompletedProcess."""
  kw.setdefault("timeout", 600)
  return subprocess.run([*LAUNCH, *args], capture_output=True, text=True,
                        cwd=ROOT, env=ENV, **kw)


def count_trials(db) -> int:
  """Trials stored in db so far (0 while it does not exist or is locked)."""
  if not os.path.exists(db):
    return 0
  try:
    with sqlite3.connect(db, timeout=5) as conn:
      return conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
  except sqlite3.OperationalError:
    return 0


def launch_and_sigkill(args, db, rng, most_trials) -> bool:
  """Starts the launcher and SIGKILLs it at a random moment: 1 to
  most_trials trials after this start's first, plus up to 0.3 s (mid-trial,
  mid-update, mid-checkpoint). True when it was still running to be
  killed."""
  proc = subprocess.Popen([*LAUNCH, *args], cwd=ROOT, env=ENV,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  until = count_trials(db) + int(rng.integers(1, most_trials + 1))
  deadline = time.time() + 300  # TF start-up is slow on a busy machine
  while (count_trials(db) < until and proc.poll() is None and
         time.time() < deadline):
    time.sleep(0.02)
  time.sleep(float(rng.uniform(0, 0.3)))
  killed = proc.poll() is None
  if killed:
    proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  return killed
