"""Random search: a uniform choice at every visited vertex (no learning).

Plain numpy: no TensorFlow.
"""

import numpy as np

from graph_nas.search.algorithms.base import Algorithm
from graph_nas.space import SearchSpace


class RandomSearch(Algorithm):
  """Uniform choice at every visited vertex."""

  name = "random"

  def __init__(self, space: SearchSpace, seed: int = 0):
    super().__init__(space, seed)
    self.rng = np.random.default_rng(seed)

  def propose(self, n):
    return [self.space.sample_random(self.rng).actions for _ in range(n)]

  def update(self, walks, rewards):
    self.num_updates += 1
    return {}

  def state(self):
    arrays, meta = super().state()
    meta["rng"] = self.rng.bit_generator.state
    return arrays, meta

  def restore(self, arrays, meta):
    super().restore(arrays, meta)
    self.rng.bit_generator.state = meta["rng"]
