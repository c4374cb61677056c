"""A toy learning-curve task for the early-stopping tests.

An architecture's final quality q in [0, 1) is drawn from a hash of its
config; its "training" runs STEPS steps, and after step i its score is
q * (1 - exp(-3 i / STEPS)) / (1 - exp(-3)): rising, the same order at
every step, q at the end. The function reports after each step (the
convention of graph_nas.search.halving.Trial) and counts its steps in a
folder, so tests see how much work each child did.

It imports neither TensorFlow nor graph_nas.search, so spawned worker
processes start fast. Module-level, so it pickles.
"""

import hashlib
import json
import math
import os
import pathlib
import signal

STEPS = 12


def quality(config) -> float:
  text = json.dumps(config, sort_keys=True).encode()
  return int(hashlib.sha1(text).hexdigest()[:8], 16) / 2 ** 32


def score(config, step: int) -> float:
  return quality(config) * (1 - math.exp(-3 * step / STEPS)) / (
      1 - math.exp(-3))


def record(folder, trial_id, steps):
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  with open(folder / "steps.txt", "a", encoding="utf-8") as f:
    f.write(f"{trial_id} {steps} {os.getpid()}\n")


def steps_done(folder):
  """[(trial_id, steps)] in the order the children ended."""
  path = pathlib.Path(folder) / "steps.txt"
  if not path.exists():
    return []
  return [tuple(int(x) for x in line.split()[:2])
          for line in path.read_text().splitlines()]


class CurveTask:
  """fn(config, trial_id, seed, trial): the curve, reported step by step.

  folder: where each child's step count is recorded. kill_at: (trial id,
  step): SIGKILL this process once (a marker file remembers), at that step
  of the first child with at least that id that gets there, to test a
  resume mid-rung.
  """

  def __init__(self, folder, kill_at=None):
    self.folder = str(folder)
    self.kill_at = kill_at

  def __call__(self, config, trial_id, seed, trial):
    del seed
    value = 0.0
    for step in range(1, STEPS + 1):
      if (self.kill_at and trial_id >= self.kill_at[0] and
          step == self.kill_at[1]):
        marker = pathlib.Path(self.folder) / "killed"
        if not marker.exists():
          marker.parent.mkdir(parents=True, exist_ok=True)
          marker.write_text(str(trial_id))
          os.kill(os.getpid(), signal.SIGKILL)
      value = score(config, step)
      trial.report(value, step / STEPS)
      if trial.should_stop():
        break
    record(self.folder, trial_id, step)
    return {"reward": value, "steps": step}


def plain_curve(config):
  """The same task without reporting (every child trains fully)."""
  return score(config, STEPS)
