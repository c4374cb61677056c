"""Reward functions for tests/test_api.py, importable by worker processes.

TensorFlow-free (a spawned worker imports only this and graph_nas.api), so
the process executor's workers start in a fraction of a second.
"""

import os

TARGET = 7


def reward(config):
  """Best at num_layers == TARGET (the stack-layers space's config)."""
  return 1.0 - abs(config.get("num_layers", 0) - TARGET) / 10.0


def reward_with_metrics(config, trial_id, seed):
  """The dict form: "reward" plus metrics, and the worker's pid."""
  return {"reward": reward(config), "pid": os.getpid(),
          "trial_id": trial_id, "seed": seed}
