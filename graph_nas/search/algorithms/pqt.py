"""Priority Queue Training (Abolafia et al. 2018): REINFORCE's controller
(graph_nas.search.algorithms.reinforce) also maximises the likelihood of
the K best unique walks seen; queue_weight 1, plus pg_weight * the
REINFORCE term (default 1; 0 is pure queue training). The queue is
:mod:`graph_nas.search.priority_queue`'s. TensorFlow.
"""

import numpy as np

from graph_nas.search.algorithms.base import check_declared
from graph_nas.search.algorithms.reinforce import Reinforce, _D
from graph_nas.search.priority_queue import TopKQueue
from graph_nas.search.settings import ALGORITHM_DEFAULTS


class PriorityQueueTraining(Reinforce):
  """PQT: maximise the likelihood of the K best unique walks seen."""

  name = "pqt"

  def __init__(self, space, seed=0, learning_rate=_D["learning_rate"],
               entropy_weight=ALGORITHM_DEFAULTS["pqt"]["entropy_weight"],
               queue_size=_D["queue_size"], pg_weight=_D["pg_weight"],
               **kwargs):
    super().__init__(space, seed, learning_rate, entropy_weight, **kwargs)
    check_declared("pqt", queue_size=queue_size, pg_weight=pg_weight)
    self.queue = TopKQueue(queue_size)
    self.pg_weight = pg_weight

  def reset(self, seed):
    super().reset(seed)
    self.queue = TopKQueue(self.queue.capacity)

  def update(self, walks, rewards):
    rewards, finite = self._finite(rewards)
    for w, r in zip(walks, rewards):
      if np.isfinite(r):
        self.queue.push(w, float(r))
    baseline = self._first_baseline(finite)
    self.num_updates += 1
    items = self.queue.items()
    if finite.size == 0 and not items:  # nothing to learn from
      return {"skipped": True, "queue_best": None}
    self._observe(finite)
    terms = self._step(walks, *self._scaled(rewards, baseline),
                       self.queue.walks(),
                       pg_weight=self.pg_weight, queue_weight=1.0)
    self._update_baseline(finite)
    return {"loss": float(terms.total), "entropy": float(terms.entropy),
            "queue_nll": float(terms.queue_nll),
            "queue_best": items[0][1] if items else None}

  def state(self):
    arrays, meta = super().state()
    meta["queue"] = self.queue.to_json()
    return arrays, meta

  def restore(self, arrays, meta):
    super().restore(arrays, meta)
    self.queue = TopKQueue.from_json(meta["queue"])
