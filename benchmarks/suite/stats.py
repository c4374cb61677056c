"""Best-so-far curves, paired bootstrap intervals and mean ranks.

Pure numpy, no TensorFlow (tested in tests/test_bench.py).
"""

from typing import Dict, List, Sequence, Tuple

import numpy as np

# The running maximum (NaN counts as -inf), said once in the package.
from graph_nas.curves import best_so_far  # noqa: F401  (re-exported)




def best_at(rewards: Sequence[float], k: int) -> float:
  """The best reward of the first k trials."""
  return float(best_so_far(rewards[:k])[-1])


def test_of_best(rewards: Sequence[float], tests: Sequence[float],
                 k: int) -> float:
  """The held-out score of the first k trials' best-by-reward trial (the
  first of ties)."""
  r = np.asarray(rewards[:k], np.float64)
  return float(np.asarray(tests, np.float64)[int(np.nanargmax(r))])


def first_hit(rewards: Sequence[float], target: float) -> float:
  """1-based trial of the first reward >= target (inf: none)."""
  hits = np.nonzero(np.asarray(rewards) >= target - 1e-12)[0]
  return float(hits[0] + 1) if hits.size else float("inf")


def paired_bootstrap(a: Sequence[float], b: Sequence[float],
                     resamples: int = 10000, seed: int = 0,
                     level: float = 0.95) -> Tuple[float, float, float]:
  """(mean of a - b, low, high): the percentile interval of the mean
  paired difference over seeds resampled with replacement."""
  d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
  if d.size == 0:
    raise ValueError("no pairs")
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, d.size, size=(resamples, d.size))
  means = d[idx].mean(axis=1)
  tail = (1 - level) / 2
  return (float(d.mean()), float(np.quantile(means, tail)),
          float(np.quantile(means, 1 - tail)))


def ranks(scores: Dict[str, float]) -> Dict[str, float]:
  """Rank 1 = highest score; ties share their mean rank."""
  names = list(scores)
  values = np.array([scores[n] for n in names])
  out = {}
  for n, v in zip(names, values):
    higher = np.sum(values > v + 1e-12)
    equal = np.sum(np.abs(values - v) <= 1e-12)
    out[n] = float(higher + (equal + 1) / 2)
  return out


def mean_ranks(per_task: List[Dict[str, float]]) -> Dict[str, float]:
  """Mean over tasks of each method's rank in that task."""
  ranked = [ranks(s) for s in per_task]
  return {n: float(np.mean([r[n] for r in ranked])) for n in ranked[0]}
