"""A plain-Python priority queue of the K best unique walks (for PQT).

Kept apart from TensorFlow (as in brain_coder's PQT): it is data, it is
checkpointed as JSON, and it is tested without a graph.
"""

import heapq
import itertools
from typing import Dict, List, Sequence, Tuple

from graph_nas.space.base import Actions


class TopKQueue:
  """Keeps the `capacity` highest-reward unique walks seen so far.

  A walk seen again keeps its best reward. Among equal rewards the walk that
  arrived first stays (the newcomer is dropped when the queue is full).
  """

  def __init__(self, capacity: int):
    if capacity < 1:
      raise ValueError(f"capacity must be >= 1, got {capacity}")
    self.capacity = capacity
    self._heap: List[Tuple[float, int, Actions]] = []  # min-heap (reward, -order)
    self._best: Dict[Actions, float] = {}
    self._counter = itertools.count()

  def __len__(self):
    return len(self._heap)

  def __contains__(self, walk):
    return tuple(walk) in self._best

  def push(self, walk: Sequence[int], reward: float) -> bool:
    """Offers a walk; returns True if the queue changed."""
    walk = tuple(int(a) for a in walk)
    reward = float(reward)
    if walk in self._best:
      if reward <= self._best[walk]:
        return False
      self._heap = [e for e in self._heap if e[2] != walk]
      heapq.heapify(self._heap)
      del self._best[walk]
    entry = (reward, -next(self._counter), walk)
    if len(self._heap) < self.capacity:
      heapq.heappush(self._heap, entry)
    elif entry > self._heap[0] and reward > self._heap[0][0]:
      _, _, dropped = heapq.heapreplace(self._heap, entry)
      del self._best[dropped]
    else:
      return False
    self._best[walk] = reward
    return True

  def items(self) -> List[Tuple[Actions, float]]:
    """(walk, reward), best first."""
    return [(w, r) for r, _, w in sorted(self._heap, reverse=True)]

  def walks(self) -> List[Actions]:
    return [w for w, _ in self.items()]

  def to_json(self) -> dict:
    return {"capacity": self.capacity,
            "items": [[list(w), r] for w, r in reversed(self.items())]}

  @classmethod
  def from_json(cls, data: dict) -> "TopKQueue":
    q = cls(int(data["capacity"]))
    for w, r in data["items"]:  # worst first: arrival order is preserved
      q.push(w, r)
    return q
