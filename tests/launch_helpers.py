"""Shared by the tests that run the launcher in a subprocess and kill it."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from tests import events
from tests.conftest import ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
LAUNCH = [sys.executable, "-m", "graph_nas.launch"]


def launch(args, **kw):
  """Runs the launcher to its end; the CompletedProcess."""
  kw.setdefault("timeout", 300)
  kw.setdefault("env", ENV)
  return subprocess.run([*LAUNCH, *args], capture_output=True, text=True,
                        cwd=ROOT, **kw)


def count_trials(db) -> int:
  """Trials stored in db so far (0 while it does not exist or is locked)."""
  if not os.path.exists(db):
    return 0
  try:
    with sqlite3.connect(db, timeout=5) as conn:
      return conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
  except sqlite3.OperationalError:
    return 0


# The search's log line of a stored trial ("trial 7 (8 of 120) reward ...",
# graph_nas.search.observers), written once per trial with --log_every=1.
TRIAL_LINE = r"\] trial \d+ \(\d+ of \d+\)"


def start_logging(args, **kw):
  """Starts the launcher with a log line per stored trial on its stderr (a
  pipe); the Popen and the events.Lines to wait on."""
  proc = subprocess.Popen([*LAUNCH, *args, "--log_every=1"], cwd=ROOT,
                          env=kw.pop("env", ENV), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, **kw)
  return proc, events.Lines(proc.stderr.fileno(), "the launcher")


def sigkill(proc):
  """SIGKILLs proc if it still runs; True when it did."""
  killed = proc.poll() is None
  if killed:
    proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  proc.stderr.close()
  return killed


def launch_and_sigkill(args, rng, most_trials) -> bool:
  """Starts the launcher and SIGKILLs it at a random moment: once the
  search has stored 2 to most_trials trials in this start (it logs each),
  after a random share of up to 3 trials' time more (mid-trial,
  mid-update, mid-checkpoint), so a start stores at most about
  most_trials + 3 trials. True when it was still running to be killed."""
  proc, lines = start_logging(args)
  try:
    n = int(rng.integers(2, most_trials + 1))
    # TF start-up is slow on a busy machine.
    found = lines.count(TRIAL_LINE, n, timeout=300,
                        describe=f"{n} stored trials")
    # A trial's time at the current pace: the mean of the last few gaps
    # (the first trials carry the controller's tracing, seconds each; a
    # mean over them let a kill come after the search had ended).
    recent = found[max(0, n - 7):n]
    first, last = lines.stamps[recent[0]], lines.stamps[recent[-1]]
    time.sleep(float(rng.uniform(0, 3 * (last - first) / (len(recent) - 1))))
  finally:
    killed = sigkill(proc)
  return killed
