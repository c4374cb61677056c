"""Reward functions for tests/test_screening.py (importable by workers and
by the launcher's --evaluator)."""

import os
import time


def layers_reward(config):
  """Stack layers: best at 12 layers."""
  return -abs(config["num_layers"] - 12) / 12.0


def optimizer_reward(config):
  """select_optimizer_b2's shape: adam with p1..p4 near 70 is best."""
  bonus = 0.3 if config["optimizer"] == "adam" else 0.0
  return bonus - sum(abs(config[f"p{i}"] - 70) for i in range(1, 5)) / 400.0


def hang_at_trial(config, trial_id, seed):
  """optimizer_reward, but at the trial named by $SCREEN_HANG_AT it writes
  $SCREEN_HANG_MARKER and waits to be killed (the event a kill test waits
  on)."""
  del seed
  if trial_id == int(os.environ.get("SCREEN_HANG_AT", "-1")):
    with open(os.environ["SCREEN_HANG_MARKER"], "w", encoding="utf-8") as f:
      f.write(str(trial_id))
    time.sleep(600)
  return optimizer_reward(config)


def curve_reward(config, trial):
  """optimizer_reward reached over 4 reported steps (early stopping)."""
  final = optimizer_reward(config)
  score = final
  for step in range(1, 5):
    score = final * step / 4 - (4 - step) * 0.01
    trial.report(score, step / 4)
    if trial.should_stop():
      break
  return score


def curve_reward_pid(config, trial):
  """curve_reward, with the process it ran in as a metric."""
  return {"reward": curve_reward(config, trial), "pid": os.getpid()}


def optimizer_features(config):
  """A user's features of select_optimizer_b2 (the predictor's
  screen_features): how far p1..p4 are from 70 in all, and whether it is
  adam. Appends a line per call to $SCREEN_FEATURES_LOG when set."""
  log = os.environ.get("SCREEN_FEATURES_LOG")
  if log:
    with open(log, "a", encoding="utf-8") as f:
      f.write("x\n")
  return [sum(abs(config[f"p{i}"] - 70) for i in range(1, 5)),
          float(config["optimizer"] == "adam")]


def reported_reward(config, trial):
  """optimizer_reward, reported at half its (notional) budget: a function
  that takes part in early stopping."""
  trial.report(optimizer_reward(config), 0.5)
  return optimizer_reward(config)
