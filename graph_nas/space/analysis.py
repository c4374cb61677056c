"""Graph analysis of a space: reachability, cycles, walk-length bounds.

Plain graph algorithms over successor lists (``succ[u]``: the distinct
target vertices of u's edges), and :func:`check_graph`, which applies them
to a space being built: every reachable vertex must lead to a terminal,
unreachable vertices are a :class:`SpaceWarning`, a cyclic graph needs a
positive ``max_steps`` and an acyclic one a ``max_steps`` (if given) no
shorter than its longest walk.

On a cyclic graph ``max_steps`` can stop a walk before a terminal vertex
(such a walk has no config: decode refuses it). There, it is an error when
even the shortest walk from the start is longer than ``max_steps``, and a
:class:`SpaceWarning` when a vertex is on no walk of at most ``max_steps``
steps from the start to a terminal (it is named with the steps such a walk
needs), and when a walk of exactly ``max_steps`` steps can end inside a
loop's body: at a vertex of a cycle's strongly connected component other
than one where walks enter it (the start, or a vertex with an edge from
outside it). A walk stopped where it enters a loop is stopped between two
turns; one stopped in the body has made half a turn (an appended layer
without its fields). The warning names a larger ``max_steps`` that stops
walks only between turns when there is one a little larger.
"""

import collections
import dataclasses
import heapq
import warnings
from typing import Dict, Iterable, List, Optional, Sequence, Set

import numpy as np

from graph_nas.errors import GraphNasError, SpaceWarning
from graph_nas.space.base import Edge, _quote

# Steps to a terminal of a vertex that leads to none (larger than any walk).
NO_TERMINAL = np.iinfo(np.int32).max
# Vertices a warning names at most (then how many more there are).
NAMED_AT_MOST = 10
# The vertex-steps the exact-step reachability of a max_steps warning may
# take (beyond it, and where its sets do not repeat, it is not checked).
STEP_SETS_WORK = 5_000_000


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


def distances(succ: Sequence[Sequence[int]],
              seeds: Iterable[int]) -> np.ndarray:
  """int64 [V]: the fewest steps from one of the seeds to each vertex
  (breadth first); NO_TERMINAL where none leads."""
  dist = np.full(len(succ), NO_TERMINAL, np.int64)
  queue = collections.deque()
  for u in seeds:
    if dist[u] != 0:
      dist[u] = 0
      queue.append(u)
  while queue:
    u = queue.popleft()
    for w in succ[u]:
      if dist[w] == NO_TERMINAL:
        dist[w] = dist[u] + 1
        queue.append(w)
  return dist


def components(succ: Sequence[Sequence[int]]) -> List[int]:
  """Per vertex, the id of its strongly connected component (Tarjan's
  algorithm, iterative)."""
  n = len(succ)
  index = [-1] * n
  low = [0] * n
  comp = [-1] * n
  on_stack = [False] * n
  stack: List[int] = []
  count = ncomp = 0
  for root in range(n):
    if index[root] >= 0:
      continue
    work = [(root, 0)]
    while work:
      u, i = work.pop()
      if i == 0:
        index[u] = low[u] = count
        count += 1
        stack.append(u)
        on_stack[u] = True
      if i < len(succ[u]):
        work.append((u, i + 1))
        w = succ[u][i]
        if index[w] < 0:
          work.append((w, 0))
        elif on_stack[w]:
          low[u] = min(low[u], index[w])
        continue
      if low[u] == index[u]:
        while True:
          w = stack.pop()
          on_stack[w] = False
          comp[w] = ncomp
          if w == u:
            break
        ncomp += 1
      if work:  # u's caller: fold u's low link into it
        parent = work[-1][0]
        low[parent] = min(low[parent], low[u])
  return comp


class StepSets:
  """Where walks of exactly t steps from the start can be: bool [V] per t.

  A walk ends at a terminal, so only non-terminal vertices lead on. The
  sets are computed step by step until one repeats (from then on they
  repeat with that period) or up to ``last`` steps; :meth:`at` is None for
  a t beyond what the work budget allowed."""

  def __init__(self, succ: Sequence[Sequence[int]], start: int, last: int,
               work: int = STEP_SETS_WORK):
    n = len(succ)
    src = np.array([u for u, ts in enumerate(succ) for _ in ts], np.int64)
    dst = np.array([w for ts in succ for w in ts], np.int64)
    cur = np.zeros(n, bool)
    cur[start] = True
    self.sets = [cur]
    self.repeat_from: Optional[int] = None
    seen: Dict[bytes, int] = {cur.tobytes(): 0}
    limit = max(64, work // (len(src) + n))
    while len(self.sets) <= min(last, limit):
      nxt = np.zeros(n, bool)
      nxt[dst[cur[src]]] = True
      key = nxt.tobytes()
      if key in seen:
        self.repeat_from = seen[key]
        break
      seen[key] = len(self.sets)
      self.sets.append(nxt)
      cur = nxt

  def at(self, t: int) -> Optional[np.ndarray]:
    if t < len(self.sets):
      return self.sets[t]
    if self.repeat_from is None:
      return None
    first = self.repeat_from
    return self.sets[first + (t - first) % (len(self.sets) - first)]


def _listed(items: Sequence[str], sep: str = ", ") -> str:
  """Items joined, the first NAMED_AT_MOST of them, then how many more."""
  more = len(items) - NAMED_AT_MOST
  return sep.join(items[:NAMED_AT_MOST]) + (f" and {more} more" if more > 0
                                            else "")


@dataclasses.dataclass
class GraphFacts:
  """What :func:`check_graph` finds (the SearchSpace attributes of that
  name)."""
  reachable: np.ndarray  # bool [V]: reachable from start
  topo_order: Optional[List[int]]  # None for a cyclic graph
  is_cyclic: bool
  max_steps: int  # the bound on walk length (at least 1)
  # int32 [V]: the fewest steps from each vertex to a terminal
  # (NO_TERMINAL where none is reachable).
  steps_to_terminal: np.ndarray


def check_graph(space) -> GraphFacts:
  """Checks the graph of a space being built (its vertex_names, edges,
  terminal, start, proto, source and _error); returns its facts.

  Warns (pointing at the code that made the SearchSpace) of unreachable
  vertices and, on a cyclic graph, of what max_steps cuts (module doc).
  """
  n = len(space.vertex_names)
  succ = successors(space.edges)
  pred = predecessors(succ)
  # Vertices from which a terminal is reachable (reverse search).
  to_terminal = distances(pred, [i for i in range(n) if space.terminal[i]])
  reached = descendants(succ, [space.start])
  reach = [i in reached for i in range(n)]
  for i in range(n):
    if reach[i] and to_terminal[i] == NO_TERMINAL:
      raise space._error("no terminal vertex is reachable from this vertex "
                         "(every walk through it would loop forever)",
                         space.vertex_names[i])
  unreachable = [space.vertex_names[i] for i in range(n) if not reach[i]]
  warned = []
  if unreachable:
    warned.append(f"vertices not reachable from start "
                  f"'{space.vertex_names[space.start]}': "
                  f"{_listed(unreachable)}")
  order = topological_order(succ)
  counted_bound = (_counted_bound(space) if order is None and
                   space.proto.max_steps <= 0 else None)
  steps = _max_steps(space, succ, order, counted_bound)
  if order is None and counted_bound is None:
    warned += _cuts(space, succ, pred, reach, to_terminal, steps)
  for message in warned:
    # Frames: here, SearchSpace._build, SearchSpace.__init__, its caller.
    warnings.warn(f"{space.source}: {message}", SpaceWarning, stacklevel=4)
  return GraphFacts(np.array(reach), order, order is None, steps,
                    to_terminal.astype(np.int32))


def _cuts(space, succ, pred, reach, to_terminal, steps) -> List[str]:
  """What max_steps cuts on a cyclic graph (see the module doc): raises
  when it cuts every walk; returns the warnings."""
  names = space.vertex_names
  shortest = int(to_terminal[space.start])
  if shortest > steps:
    raise GraphNasError(f"max_steps {steps} is shorter than the shortest "
                        f"walk from the start to a terminal vertex "
                        f"({shortest} steps): every walk would be cut "
                        f"short", source=space.source)
  out = []
  from_start = distances(succ, [space.start])
  through = from_start + to_terminal
  late = [v for v in range(len(names)) if reach[v] and through[v] > steps]
  if late:
    out.append(f"max_steps {steps} is too short for any walk through "
               + _listed([f"{_quote(names[v])} (needs {through[v]} steps)"
                          for v in late]))
  # Loop bodies: vertices of a cyclic component that walks do not enter it
  # at.
  comp = components(succ)
  size = collections.Counter(comp)
  body = np.array([
      reach[v] and (size[comp[v]] > 1 or v in succ[v]) and
      v != space.start and
      all(comp[u] == comp[v] for u in pred[v] if reach[u])
      for v in range(len(names))])
  if not body.any():
    return out
  # max_steps is an int32.
  window = max(0, min(2 * len(names), 1000, np.iinfo(np.int32).max - steps))
  sets = StepSets(succ, space.start, steps + window)

  def clean(t):
    """Walks of exactly t steps end in no loop's body (False: they may, or
    it is not known)."""
    ends = sets.at(t)
    return ends is not None and not (ends & body).any()

  ends = sets.at(steps)
  if ends is None or clean(steps):  # not known within the budget, or none
    return out
  cut = np.flatnonzero(ends & body).tolist()
  better = next((t for t in range(steps + 1, steps + window + 1)
                 if clean(t)), None)
  entries = {}
  for v in cut:
    entries.setdefault(comp[v], [])
  for v in range(len(names)):
    if reach[v] and comp[v] in entries and not body[v]:
      entries[comp[v]].append(v)
  where = _listed([
      f"at {_listed([_quote(names[v]) for v in cut if comp[v] == c], ' or ')}"
      f" in the loop entered at "
      f"{_listed([_quote(names[u]) for u in heads], ' or ')}"
      for c, heads in entries.items()], "; ")
  hint = (f"; max_steps {better} stops walks only between turns" if better
          else "")
  out.append(f"max_steps {steps} can stop a walk in the middle of a loop's "
             f"turn, {where}: such a walk reaches no terminal vertex and "
             f"has no config (a failed trial, its reason naming "
             f"max_steps){hint}")
  return out


def _counted_bound(space) -> Optional[int]:
  """The longest walk of a cyclic graph whose every cycle takes a counted
  action (max_taken), None if a cycle takes none: with S the counted
  actions' max_taken summed and L the longest walk without a counted
  action, S + (S + 1) * L."""
  limits = getattr(space, "counter_limit", ())
  if not len(limits):
    return None
  free = [sorted({e.target for a, e in enumerate(edges)
                  if space.edge_counter[v, a] < 0})
          for v, edges in enumerate(space.edges)]
  order = topological_order(free)
  if order is None:
    return None
  longest = max(longest_path(free, order, v) for v in range(len(free)))
  total = int(sum(int(x) for x in limits))
  return total + (total + 1) * longest


def _max_steps(space, succ, order, counted_bound=None) -> int:
  """The bound on walk length: max_steps as given (positive and needed for
  a cyclic graph unless every cycle takes a counted action: then the
  counted bound), else the longest walk of an acyclic one; at least 1."""
  given = space.proto.max_steps
  if order is None:
    if given <= 0 and counted_bound is not None:
      return max(int(counted_bound), 1)
    if given <= 0:
      raise GraphNasError("the graph has a cycle: set a positive "
                          "max_steps to bound its walks (or a max_taken "
                          "on an action of each cycle)",
                          source=space.source)
    steps = int(given)
  else:
    longest = longest_path(succ, order, space.start)
    if given and given < longest:
      raise GraphNasError(f"max_steps {given} is shorter "
                          f"than the longest walk ({longest} steps) of "
                          "this acyclic graph", source=space.source)
    steps = int(given or longest)
  return max(steps, 1)
