"""Evaluators for the crash-safety and error-naming tests, given to the
launcher as --evaluator=tests.crash_evaluators:NAME.

Like tests/executor_evaluators.py, this module imports neither TensorFlow
nor graph_nas.search, so a process-executor worker starts quickly even on a
busy machine.
"""

import hashlib
import json
import os
import pathlib
import time

# The folder where SlowReward leaves its marks (set by the test).
FOLDER_ENV = "GRAPH_NAS_TEST_FOLDER"
# SlowReward holds this trial until the file "release" appears (unset: no
# trial is held).
HOLD_ENV = "GRAPH_NAS_TEST_HOLD_TRIAL"


def config_reward(config) -> float:
  """A reward in [0, 1) fixed by the config alone (not the seed)."""
  digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
  return int(digest.hexdigest()[:12], 16) / 16**12


def always_fails(config):
  """A reward function whose every trial fails."""
  del config
  raise RuntimeError("this reward always fails")


class SlowReward:
  """config_reward after a short sleep (a child that takes a moment).

  Says what it does, for a test to wait on: for every trial it starts, the
  file started-<trial>-<pid> in $GRAPH_NAS_TEST_FOLDER and the line
  "started <trial> <pid>" on stdout (a worker process shares the
  driver's). The trial numbered $GRAPH_NAS_TEST_HOLD_TRIAL then writes
  holding-<pid> and the line "holding <trial> <pid>", and waits until the
  file "release" appears (at most HOLD_S seconds), so a test can kill the
  driver while that trial is being evaluated."""

  HOLD_S = 300  # below the tests' 420 s limit

  def __init__(self):
    self.folder = pathlib.Path(os.environ[FOLDER_ENV])
    hold = os.environ.get(HOLD_ENV)
    self.hold = int(hold) if hold else None

  def evaluate(self, config, trial_id, seed):
    del seed
    from graph_nas.search.results import EvalResult
    self.folder.mkdir(parents=True, exist_ok=True)
    (self.folder / f"started-{trial_id}-{os.getpid()}").write_text("")
    print(f"started {trial_id} {os.getpid()}", flush=True)
    if trial_id == self.hold:
      (self.folder / f"holding-{os.getpid()}").write_text(str(trial_id))
      print(f"holding {trial_id} {os.getpid()}", flush=True)
      deadline = time.time() + self.HOLD_S
      while (not (self.folder / "release").exists() and
             time.time() < deadline):
        time.sleep(0.05)
    else:
      time.sleep(0.05)
    return EvalResult("ok", config_reward(config), {"pid": os.getpid()})
