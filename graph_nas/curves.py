"""Curves of a search's rewards, said once: the best so far.

Pure numpy (no TensorFlow, no plotting, nothing of the package): the
experiment runner's curves.json and the benchmarks' statistics use it
alike.
"""

from typing import Sequence

import numpy as np


def best_so_far(rewards: Sequence[float]) -> np.ndarray:
  """The best reward after each trial, a running maximum (a failed
  trial's NaN counts as -inf)."""
  r = np.asarray(rewards, np.float64)
  return np.maximum.accumulate(np.where(np.isnan(r), -np.inf, r))
