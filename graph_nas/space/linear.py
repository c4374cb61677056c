"""The linear twin of a graph space: its slots, its message, its replay.

Acyclic graph: one slot per reachable non-terminal vertex, in topological
order (ties by declaration order): every branch's decisions are made.
Cyclic graph (or an ``unroll`` given): the graph is unrolled in time for
``unroll`` steps (default ``linear_unroll`` or ``max_steps``); slot ``v@t``
exists for every non-terminal vertex v reachable in exactly t steps.

A linear walk makes every slot's decision. It decodes by replaying the graph
walk: a slot's decision is used when the slot is the vertex (and, for an
unrolled graph, the step) the graph walk is at; otherwise it is ignored.

These functions take the graph (a built SearchSpace) as an argument; the
class :class:`~graph_nas.space.graph.LinearTwin` puts them together.
"""

from typing import List, Optional, Sequence, Tuple

from graph_nas.errors import GraphNasError
from graph_nas.protos import search_space_pb2 as pb
from graph_nas.space.base import (MAX_LINEAR_SLOTS, MAX_TABLE_ENTRIES,
                                  MAX_TOTAL_ACTIONS)

# (graph vertex, step: None for an acyclic graph's slot)
Slot = Tuple[int, Optional[int]]


def twin_slots(graph, unroll: Optional[int] = None) -> List[Slot]:
  """The twin's decision slots, in order (see the module doc)."""
  if not graph.is_cyclic and unroll is None:
    return [(v, None) for v in graph.topo_order
            if graph.reachable[v] and not graph.terminal[v]]
  slots = []
  steps = unroll or graph.proto.linear_unroll or graph.max_steps
  frontier = {graph.start}
  for t in range(steps):
    live = sorted(v for v in frontier if not graph.terminal[v])
    slots.extend((v, t) for v in live)
    if len(slots) > MAX_LINEAR_SLOTS:
      raise GraphNasError(f"the linear twin unrolled to {steps} steps "
                          f"has more than {MAX_LINEAR_SLOTS} slots (set "
                          "a smaller linear_unroll)",
                          source=graph.source)
    frontier = {e.target for v in live for e in graph.edges[v]}
    if not frontier:
      break
  return slots


def check_twin_size(graph, slots: Sequence[Slot]) -> None:
  """Refuses a twin too large, before its message is built."""
  total = sum(int(graph.num_actions[v]) for v, _ in slots)
  if total > MAX_TOTAL_ACTIONS:
    raise GraphNasError(f"the linear twin would have {total} actions, more "
                        f"than {MAX_TOTAL_ACTIONS}", source=graph.source)
  if (len(slots) + 1) * graph.max_actions > MAX_TABLE_ENTRIES:
    raise GraphNasError(f"the linear twin's {len(slots) + 1} slots x "
                        f"{graph.max_actions} actions is too large a table",
                        source=graph.source)


def _slot_names(graph, slots: Sequence[Slot]) -> List[str]:
  """Distinct vertex names of the slots ("v" or "v@t"), then "end"."""
  names, used = [], set()
  for name in [graph.vertex_names[v] + ("" if t is None else f"@{t}")
               for v, t in slots] + ["end"]:
    while name in used:  # "a@1" may also be a graph vertex's own name
      name = "_" + name
    used.add(name)
    names.append(name)
  return names


def twin_proto(graph, slots: Sequence[Slot]) -> pb.SearchSpace:
  """The twin's message: a chain of the slots' vertices, then "end"; each
  slot has its graph vertex's actions, all leading to the next slot."""
  proto = pb.SearchSpace(name=f"{graph.name}_linear_twin",
                         description=f"linear twin of {graph.name}",
                         task=graph.proto.task)
  proto.task_params.update(graph.proto.task_params)
  names = _slot_names(graph, slots)
  proto.start = names[0]
  for i, (v, _) in enumerate(slots):
    vert = proto.vertices.add(name=names[i])
    for a in graph.proto.vertices[v].actions:
      copy_a = vert.actions.add()
      copy_a.CopyFrom(a)
      copy_a.target = names[i + 1]
      # A slot is decided once: the graph's counts apply in the replay.
      copy_a.ClearField("max_taken")
  proto.vertices.add(name=names[-1])
  return proto


def replay(graph, slots: Sequence[Slot], actions: Sequence[int]) -> List[int]:
  """The graph walk that a (checked) linear walk stands for. A slot's
  decision that the graph's max_taken no longer allows (its action taken
  that many times already) is replaced by the vertex's first action still
  allowed, so the replay is a walk of the graph."""
  import numpy as np
  cur, t, out = graph.start, 0, []
  counts = np.zeros(len(graph.counter_limit), np.int64)
  for (v, step), a in zip(slots, actions):
    if graph.terminal[cur]:
      break
    if v == cur and (step is None or step == t):
      a = int(a)
      if len(counts):
        allowed = graph.allowed(cur, counts)
        if a not in allowed:
          a = int(allowed[0])
        if graph.edge_counter[cur, a] >= 0:
          counts[graph.edge_counter[cur, a]] += 1
      out.append(a)
      cur = int(graph.next_vertex[cur, a])
      t += 1
  return out
