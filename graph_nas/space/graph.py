"""The indexed space: :class:`SearchSpace`, walks, decoding, the twin class.

:class:`SearchSpace` builds a validated proto into the integer-indexed numpy
arrays that a batched controller consumes (expansion, key checks and graph
analysis are done by the modules it calls), checks and decodes walks into
plain JSON-able configs, and samples uniformly random walks. A walk that
``max_steps`` stops before a terminal vertex is a valid walk (a sampler may
propose it) but has no config: decode refuses it, naming ``max_steps`` and
the vertex where it stopped.
:class:`LinearTwin` is the space's linear twin (built by
:mod:`graph_nas.space.linear`). Also here: the space's fingerprint, every
walk of a small space, and a walk's log-probability under uniform sampling.
"""

import copy
import hashlib
import math
import os
from typing import List, Optional, Sequence

import numpy as np

from graph_nas.errors import GraphNasError
from graph_nas.protos import search_space_pb2 as pb
from graph_nas.space import analysis, dot, expand, keys, linear
from graph_nas.space.base import MAX_TABLE_ENTRIES, Edge, Walk
from graph_nas.space.config import apply_edge, get_path
from graph_nas.space.lines import SourceLines


class SearchSpace:
  """A validated, indexed search space.

  Attributes (numpy arrays are what a batched controller needs):
    name, source: the space's name and the file it came from.
    vertex_names: list of vertex names; the id of a vertex is its index.
    edges: per vertex, the list of expanded Edge objects (action index = pos).
    start: start vertex id.  max_steps: bound on walk length.
    num_actions: int32 [V] actions per vertex (0 = terminal).
    next_vertex: int32 [V, A] target of each action, -1 where padded.
    action_offset: int32 [V] global id of each vertex's action 0; the global
      id of action a at vertex v is action_offset[v] + a (``num_global_actions``
      in total).
    terminal: bool [V].
    steps_to_terminal: int32 [V] the fewest steps from each vertex to a
      terminal (a huge number where none is reachable): at vertex v with
      r steps left, action a can still end at a terminal when
      steps_to_terminal[next_vertex[v, a]] <= r - 1.
  """

  def __init__(self, proto: pb.SearchSpace, source: str = "<string>",
               text: Optional[str] = None):
    self.proto = proto
    self.source = source
    self._text = text
    self._lines = SourceLines(proto, source, text)
    self.name = proto.name or os.path.splitext(os.path.basename(source))[0]
    self._build()

  # ---------------------------------------------------------------- loading
  _validate_keys = True  # the key path checks (off for a linear twin)

  def _error(self, message, vertex=None, action=None, vi=None, spec=None):
    return self._lines.error(message, vertex, action, vi, spec)

  def _build(self):
    p = self.proto
    index = expand.index_vertices(p, self._lines)
    self.vertex_names = [v.name for v in p.vertices]
    self.vertex_index = index
    self.start = index[p.start]
    self.edges: List[List[Edge]] = expand.expand_vertices(p, index,
                                                          self._lines)
    self.defaults = expand.build_defaults(p, self._lines)
    self.conditions = expand.conditions(p)
    self._build_tables()
    # check_graph and check_keys warn with stacklevels that count these
    # frames: call them from here only.
    facts = analysis.check_graph(self)
    self.reachable = facts.reachable
    self.topo_order = facts.topo_order
    self.is_cyclic = facts.is_cyclic
    self.max_steps = facts.max_steps
    self.steps_to_terminal = facts.steps_to_terminal
    if self._validate_keys:
      keys.check_keys(self)

  def _build_tables(self):
    """The arrays: num_actions, terminal, next_vertex, action_offset."""
    n = len(self.vertex_names)
    self.num_actions = np.array([len(e) for e in self.edges], np.int32)
    self.max_actions = max(1, int(self.num_actions.max()))
    if n * self.max_actions > MAX_TABLE_ENTRIES:
      raise GraphNasError(f"{n} vertices x {self.max_actions} actions is too "
                          "large a table", source=self.source)
    self.terminal = self.num_actions == 0
    self.next_vertex = np.full((n, self.max_actions), -1, np.int32)
    for vi, edges in enumerate(self.edges):
      for ai, e in enumerate(edges):
        self.next_vertex[vi, ai] = e.target
    self.action_offset = np.concatenate(
        [[0], np.cumsum(self.num_actions)[:-1]]).astype(np.int32)
    self.num_global_actions = int(self.num_actions.sum())
    # Counted actions (max_taken): edge_counter [V, A] is the counter of
    # each edge (-1: not counted), counter_limit [C] its max_taken,
    # counter_names [C] "vertex:action". All the edges (values) of one
    # Action message share its counter.
    self.edge_counter = np.full((n, self.max_actions), -1, np.int32)
    limits, names = [], []
    for vi, v in enumerate(self.proto.vertices):
      for spec, a in enumerate(v.actions):
        if a.max_taken <= 0:
          continue
        for ai, e in enumerate(self.edges[vi]):
          if e.spec == spec:
            self.edge_counter[vi, ai] = len(limits)
        limits.append(int(a.max_taken))
        names.append(f"{v.name}:{a.name}")
      counted = self.edge_counter[vi, :self.num_actions[vi]]
      if len(counted) and (counted >= 0).all():
        raise self._error(
            "every action of this vertex has a max_taken: a walk that "
            "used them all could not go on; leave one without a limit",
            v.name)
    self.counter_limit = np.array(limits, np.int32)
    self.counter_names = names

  def allowed(self, vertex: int, counts) -> np.ndarray:
    """The action indices at `vertex` a walk that took each counted action
    counts[c] times may take (every one not taken max_taken times)."""
    ids = np.arange(self.num_actions[vertex])
    if not len(self.counter_limit):
      return ids
    c = self.edge_counter[vertex, :self.num_actions[vertex]]
    ok = (c < 0) | (np.asarray(counts)[np.maximum(c, 0)] <
                    self.counter_limit[np.maximum(c, 0)])
    return ids[ok]

  # --------------------------------------------------------------- walking
  def check_walk(self, actions: Sequence[int]) -> Walk:
    """Validates a sequence of action indices; returns the Walk."""
    cur = self.start
    vertices = [cur]
    counts = np.zeros(len(self.counter_limit), np.int64)
    for t, a in enumerate(actions):
      a = int(a)
      if self.terminal[cur]:
        raise GraphNasError(f"walk goes on after terminal vertex at step {t}",
                            source=self.source, vertex=self.vertex_names[cur])
      if not 0 <= a < self.num_actions[cur]:
        raise GraphNasError(f"action index {a} at step {t} is out of range "
                            f"(the vertex has {self.num_actions[cur]})",
                            source=self.source, vertex=self.vertex_names[cur])
      c = self.edge_counter[cur, a]
      if c >= 0:
        counts[c] += 1
        if counts[c] > self.counter_limit[c]:
          raise GraphNasError(
              f"the walk takes action '{self.edges[cur][a].name}' "
              f"{counts[c]} times by step {t}, more than its max_taken "
              f"{self.counter_limit[c]}", source=self.source,
              vertex=self.vertex_names[cur])
      cur = int(self.next_vertex[cur, a])
      vertices.append(cur)
    if len(actions) > self.max_steps:
      raise GraphNasError(f"walk has {len(actions)} steps, more than "
                          f"max_steps {self.max_steps}", source=self.source)
    truncated = not self.terminal[cur]
    if truncated and len(actions) < self.max_steps:
      raise GraphNasError(f"walk stops at non-terminal vertex after "
                          f"{len(actions)} steps", source=self.source,
                          vertex=self.vertex_names[cur])
    return Walk(tuple(int(a) for a in actions), tuple(vertices), truncated)

  def decode(self, actions: Sequence[int]) -> dict:
    """Decodes a walk (its action indices) into the architecture config.

    A walk that max_steps stopped before a terminal vertex (truncated) is
    refused: what it built is unfinished (a layer appended and not yet
    given its fields), and no function of the config should see it."""
    walk = self.check_walk(actions)
    if walk.truncated:
      raise self._stopped(walk.vertices[-1], len(walk.actions),
                          f"max_steps {self.max_steps}")
    return self._config_of(walk.actions)

  def walk_of(self, config: dict) -> tuple:
    """A walk that decodes to `config` (graph_nas.space.encode); a
    GraphNasError naming the first decision that does not fit if none."""
    from graph_nas.space import encode
    return encode.walk_of(self, config)

  def _stopped(self, vertex: int, steps: int, by: str) -> GraphNasError:
    return GraphNasError(f"{by} stopped the walk here after {steps} steps, "
                         "before a terminal vertex: an unfinished walk has "
                         "no config", source=self.source,
                         vertex=self.vertex_names[vertex])

  def _config_of(self, actions: Sequence[int]) -> dict:
    """The config the actions of a walk from start build (not checked: it
    may stop anywhere)."""
    config = copy.deepcopy(self.defaults)
    frozen = False
    cur = self.start
    for a in actions:
      edge = self.edges[cur][a]
      if not frozen and self._active(cur, config):
        apply_edge(config, edge, {"source": self.source,
                                  "vertex": self.vertex_names[cur],
                                  "action": edge.name})
      frozen = frozen or edge.ends_config
      cur = edge.target
    return config

  def _active(self, v, config):
    for path, want in self.conditions[v]:
      try:
        if get_path(config, path) != want:
          return False
      except (KeyError, IndexError, TypeError):
        return False
    return True

  def action_names(self, actions: Sequence[int]) -> List[str]:
    walk = self.check_walk(actions)
    return [f"{self.vertex_names[v]}:{self.edges[v][a].name}"
            for v, a in zip(walk.vertices, walk.actions)]

  def sample_random(self, rng: np.random.Generator,
                    finish: bool = False) -> Walk:
    """One walk, uniform over the actions at every visited vertex.

    finish: uniform over the actions from which a terminal is still
    reachable in the steps left, so that max_steps never stops the walk
    (uniform_log_prob is then not its probability)."""
    cur = self.start
    actions, vertices = [], [cur]
    counted = len(self.counter_limit) > 0
    counts = np.zeros(len(self.counter_limit), np.int64)
    while not self.terminal[cur] and len(actions) < self.max_steps:
      if finish:
        left = self.max_steps - len(actions) - 1
        ok = np.flatnonzero(self.steps_to_terminal[
            self.next_vertex[cur, :self.num_actions[cur]]] <= left)
        if counted:
          allowed = self.allowed(cur, counts)
          ok = np.intersect1d(ok, allowed) if len(
              np.intersect1d(ok, allowed)) else allowed
        a = int(ok[rng.integers(len(ok))])
      elif counted:
        allowed = self.allowed(cur, counts)
        a = int(allowed[rng.integers(len(allowed))])
      else:
        a = int(rng.integers(self.num_actions[cur]))
      if counted and self.edge_counter[cur, a] >= 0:
        counts[self.edge_counter[cur, a]] += 1
      actions.append(a)
      cur = int(self.next_vertex[cur, a])
      vertices.append(cur)
    return Walk(tuple(actions), tuple(vertices), not self.terminal[cur])

  # ----------------------------------------------------------- linear twin
  def linear_twin(self, unroll: Optional[int] = None) -> "LinearTwin":
    """The fixed-length (Zoph & Le) sequence of decisions of this space."""
    return LinearTwin(self, unroll)

  def to_dot(self) -> str:
    """Graphviz DOT; one edge per Action message (values shown in a label)."""
    return dot.to_dot(self)

  def __repr__(self):
    return (f"SearchSpace({self.name!r}, vertices={len(self.vertex_names)}, "
            f"actions={self.num_global_actions}, max_steps={self.max_steps})")


class LinearTwin(SearchSpace):
  """The linear twin of a graph space: a chain of fixed decision slots.

  Acyclic graph: one slot per reachable non-terminal vertex, in topological
  order (ties by declaration order): every branch's decisions are made.
  Cyclic graph: the graph is unrolled in time for ``unroll`` steps (default
  ``linear_unroll`` or ``max_steps``); slot ``v@t`` exists for every
  non-terminal vertex v reachable in exactly t steps.

  A linear walk makes every slot's decision. It decodes by replaying the
  graph walk: a slot's decision is used when the slot is the vertex (and, for
  an unrolled graph, the step) the graph walk is at; otherwise it is ignored.
  The config therefore has the graph's schema. A replay that the unroll
  stops before a terminal vertex is refused, as the graph refuses a walk
  that max_steps stops.
  """

  _validate_keys = False  # its config is the graph's (decode replays it)

  def __init__(self, graph: SearchSpace, unroll: Optional[int] = None):
    self.graph = graph
    self.slots = linear.twin_slots(graph, unroll)
    # What bounds a replay (named when one is stopped).
    self.unroll_by = (f"the linear twin's unroll ({unroll} steps)" if unroll
                      else f"linear_unroll {graph.proto.linear_unroll}"
                      if graph.proto.linear_unroll
                      else f"max_steps {graph.max_steps}")
    # Sizes known before the proto is built: no giant twin only to refuse it.
    linear.check_twin_size(graph, self.slots)
    super().__init__(linear.twin_proto(graph, self.slots),
                     source=f"{graph.source} (linear twin)")

  def to_graph_actions(self, actions: Sequence[int]) -> List[int]:
    """The graph walk a linear walk stands for (replay; see class doc)."""
    self.check_walk(actions)
    return linear.replay(self.graph, self.slots, actions)

  def decode(self, actions: Sequence[int]) -> dict:
    # A replay may stop at a non-terminal (unrolled loop exhausted): refused
    # as a graph walk that max_steps stops is.
    replayed = self.to_graph_actions(actions)
    cur = self.graph.start
    for a in replayed:
      cur = int(self.graph.next_vertex[cur, a])
    if not self.graph.terminal[cur]:
      by = (f"max_steps {self.graph.max_steps}"
            if len(replayed) >= self.graph.max_steps else self.unroll_by)
      raise self.graph._stopped(cur, len(replayed), by)
    return self.graph._config_of(replayed)


def fingerprint(space: SearchSpace) -> str:
  """The space's fingerprint: a hash of its expanded message (what a
  search stores in its identity, and what reports compare a run with)."""
  return hashlib.sha256(space.proto.SerializeToString(
      deterministic=True)).hexdigest()[:16]


def exact_walks(space: SearchSpace, limit: int = 100_000):
  """Enumerates every walk of a small space (for tests and exact gradients).

  Walks truncated by max_steps are included. Raises if more than `limit`.
  """
  out = []
  stack = [(space.start, ())]
  while stack:
    cur, acts = stack.pop()
    if space.terminal[cur] or len(acts) == space.max_steps:
      out.append(acts)
      if len(out) > limit:
        raise GraphNasError(f"more than {limit} walks", source=space.source)
      continue
    for a in range(space.num_actions[cur]):
      stack.append((int(space.next_vertex[cur, a]), acts + (a,)))
  return sorted(out)


def uniform_log_prob(space: SearchSpace, actions: Sequence[int]) -> float:
  walk = space.check_walk(actions)
  return -sum(math.log(space.num_actions[v]) for v in walk.vertices[:-1])
