"""Graph analysis of a space: reachability, cycles, walk-length bounds.

Plain graph algorithms over successor lists (``succ[u]``: the distinct
target vertices of u's edges), and :func:`check_graph`, which applies them
to a space being built: every reachable vertex must lead to a terminal,
unreachable vertices are a :class:`SpaceWarning`, a cyclic graph needs a
positive ``max_steps`` and an acyclic one a ``max_steps`` (if given) no
shorter than its longest walk.
"""

import dataclasses
import heapq
import warnings
from typing import Iterable, List, Optional, Sequence, Set

import numpy as np

from graph_nas.errors import GraphNasError, SpaceWarning
from graph_nas.space.base import Edge


def successors(edges: Sequence[Sequence[Edge]]) -> List[List[int]]:
  """Per vertex, the sorted distinct targets of its edges."""
  return [sorted({e.target for e in es}) for es in edges]


def descendants(succ: Sequence[Sequence[int]],
                seeds: Iterable[int]) -> Set[int]:
  """The seeds and every vertex reachable from one of them."""
  seen = set(seeds)
  stack = list(seen)
  while stack:
    u = stack.pop()
    for w in succ[u]:
      if w not in seen:
        seen.add(w)
        stack.append(w)
  return seen


def predecessors(succ: Sequence[Sequence[int]]) -> List[List[int]]:
  """The reversed graph's successor lists."""
  pred = [[] for _ in range(len(succ))]
  for u, targets in enumerate(succ):
    for w in targets:
      pred[w].append(u)
  return pred


def topological_order(succ: Sequence[Sequence[int]]) -> Optional[List[int]]:
  """Kahn's algorithm, ties broken by declaration order; None if cyclic."""
  n = len(succ)
  indeg = [0] * n
  for u in range(n):
    for w in succ[u]:
      indeg[w] += 1
  heap = [i for i in range(n) if indeg[i] == 0]
  heapq.heapify(heap)
  order = []
  while heap:
    u = heapq.heappop(heap)
    order.append(u)
    for w in succ[u]:
      indeg[w] -= 1
      if indeg[w] == 0:
        heapq.heappush(heap, w)
  return order if len(order) == n else None


def longest_path(succ: Sequence[Sequence[int]], order: Sequence[int],
                 start: int) -> int:
  """Steps of the longest walk from start (order: a topological order)."""
  dist = [0] * len(succ)
  for u in reversed(order):
    dist[u] = max([dist[w] + 1 for w in succ[u]], default=0)
  return dist[start]


@dataclasses.dataclass
class GraphFacts:
  """What :func:`check_graph` finds (the SearchSpace attributes of that
  name)."""
  reachable: np.ndarray  # bool [V]: reachable from start
  topo_order: Optional[List[int]]  # None for a cyclic graph
  is_cyclic: bool
  max_steps: int  # the bound on walk length (at least 1)


def check_graph(space) -> GraphFacts:
  """Checks the graph of a space being built (its vertex_names, edges,
  terminal, start, proto, source and _error); returns its facts.

  Warns (pointing at the code that made the SearchSpace) of unreachable
  vertices.
  """
  n = len(space.vertex_names)
  succ = successors(space.edges)
  pred = predecessors(succ)
  # Vertices from which a terminal is reachable (reverse search).
  good = descendants(pred, [i for i in range(n) if space.terminal[i]])
  reached = descendants(succ, [space.start])
  reach = [i in reached for i in range(n)]
  for i in range(n):
    if reach[i] and i not in good:
      raise space._error("no terminal vertex is reachable from this vertex "
                         "(every walk through it would loop forever)",
                         space.vertex_names[i])
  unreachable = [space.vertex_names[i] for i in range(n) if not reach[i]]
  if unreachable:
    # Frames: here, SearchSpace._build, SearchSpace.__init__, its caller.
    warnings.warn(f"{space.source}: vertices not reachable from start "
                  f"'{space.vertex_names[space.start]}': "
                  f"{', '.join(unreachable)}", SpaceWarning, stacklevel=4)
  order = topological_order(succ)
  return GraphFacts(np.array(reach), order, order is None,
                    _max_steps(space, succ, order))


def _max_steps(space, succ, order) -> int:
  """The bound on walk length: max_steps as given (positive and needed for
  a cyclic graph), else the longest walk of an acyclic one; at least 1."""
  given = space.proto.max_steps
  if order is None:
    if given <= 0:
      raise GraphNasError("the graph has a cycle: set a positive "
                          "max_steps to bound its walks", source=space.source)
    steps = int(given)
  else:
    longest = longest_path(succ, order, space.start)
    if given and given < longest:
      raise GraphNasError(f"max_steps {given} is shorter "
                          f"than the longest walk ({longest} steps) of "
                          "this acyclic graph", source=space.source)
    steps = int(given or longest)
  return max(steps, 1)
