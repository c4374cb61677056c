"""Search spaces: load a textproto, validate it, index it, decode walks.

A search space is a directed graph (see ``protos/search_space.proto``): each
vertex is a decision, each outgoing edge an action. This module knows nothing
of TensorFlow or training; it turns the proto into integer-indexed numpy
arrays that a batched controller consumes, decodes a walk (a sequence of
per-vertex action indices) into a plain JSON-able config, samples uniformly
random walks, and derives the *linear twin* of any graph space.

Unreachable vertices are a warning (:class:`SpaceWarning`), not an error:
they are kept in the index (a controller holds a head for them that is never
used) so that a space under construction still loads.
"""

import copy
import dataclasses
import heapq
import math
import os
import re
import warnings
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from google.protobuf import text_format

from graph_nas.errors import GraphNasError, SpaceWarning
from graph_nas.protos import search_space_pb2 as pb

# Limits that keep a typo ("stop: 1000000000") from exhausting memory.
MAX_ACTIONS_PER_VERTEX = 100_000
MAX_TOTAL_ACTIONS = 1_000_000
MAX_TABLE_ENTRIES = 20_000_000  # vertices x max actions, the padded tables
# A linear controller takes one LSTM step per slot; a longer chain is of no
# use and takes tens of seconds to build.
MAX_LINEAR_SLOTS = 10_000

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[-?\d+\])*"
                     r"(\.[A-Za-z_][A-Za-z0-9_]*(\[-?\d+\])*)*$")
_TOKEN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(-?\d+)\]")


@dataclasses.dataclass(frozen=True)
class Edge:
  """One expanded action: an edge of the graph."""
  name: str
  target: int
  key: str
  op: int
  value: Any
  ends_config: bool
  spec: int  # index of the Action message in its vertex (before expansion)


@dataclasses.dataclass(frozen=True)
class Walk:
  """A walk: the action index taken at each visited vertex."""
  actions: Tuple[int, ...]
  vertices: Tuple[int, ...]  # visited vertices, len(actions) + 1
  truncated: bool  # stopped by max_steps before reaching a terminal


def _value(v: pb.Value):
  kind = v.WhichOneof("kind")
  return None if kind is None else getattr(v, kind)


def parse_key(key: str) -> List[Any]:
  """'layers[-1].kernel' -> ['layers', -1, 'kernel'] (str keys, int idx)."""
  if not _KEY_RE.match(key):
    raise ValueError(f"bad config key {key!r}: expected names joined by '.', "
                     "each optionally indexed like name[-1]")
  out = []
  for name, idx in _TOKEN_RE.findall(key):
    out.append(name if name else int(idx))
  return out


def format_path(path: Sequence[Any]) -> str:
  """['layers', -1, 'kernel'] -> 'layers[-1].kernel' (parse_key's inverse)."""
  out = ""
  for tok in path:
    if isinstance(tok, int):
      out += f"[{tok}]"
    else:
      out += ("." if out else "") + tok
  return out


def _schema(path: Sequence[Any]) -> Tuple[Any, ...]:
  """A key path with its list indexes wildcarded: ('layers', None, 'k')."""
  return tuple(None if isinstance(t, int) else t for t in path)


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _bad_text(text: str) -> Optional[str]:
  """Why a name or string value is unusable (control characters), or None."""
  m = _CONTROL_RE.search(text)
  if m:
    return (f"has a control character ({m.group()!r}); names and string "
            "values must be printable")
  return None


def _value_fault(x) -> Optional[str]:
  """Why a value given in the space is unusable, or None."""
  if isinstance(x, float) and not math.isfinite(x):
    return f"{x} is not a finite number"
  if isinstance(x, str):
    bad = _bad_text(x)
    if bad:
      return f"string {x!r} {bad}"
  return None


def get_path(config, path: Sequence[Any]):
  """Returns the value at path, or raises KeyError/IndexError/TypeError."""
  node = config
  for tok in path:
    node = node[tok]
  return node


def _container(config, path, where):
  """Walks to the parent of path[-1], creating dicts for missing names."""
  node = config
  for i, tok in enumerate(path[:-1]):
    nxt = path[i + 1]
    if isinstance(tok, int):
      if not isinstance(node, list) or not -len(node) <= tok < len(node):
        raise GraphNasError(f"config key: no element [{tok}] in the list "
                            f"at this point of the walk (add an APPEND action "
                            f"before it)", **where)
      node = node[tok]
    else:
      if not isinstance(node, dict):
        raise GraphNasError(f"config key: '{tok}' is set on a non-dict",
                            **where)
      if tok not in node:
        if isinstance(nxt, int):
          raise GraphNasError(f"config key: list '{tok}' does not exist yet "
                              "(add an APPEND action before it)", **where)
        node[tok] = {}
      node = node[tok]
  return node


def apply_edge(config: dict, edge: Edge, where: dict) -> None:
  """Applies one action's operation to config in place."""
  if not edge.key:
    return
  path = parse_key(edge.key)
  parent = _container(config, path, where)
  last = path[-1]
  if isinstance(last, int):
    if not isinstance(parent, list) or not -len(parent) <= last < len(parent):
      raise GraphNasError(f"config key '{edge.key}': no element [{last}]",
                          **where)
  elif not isinstance(parent, dict):
    raise GraphNasError(f"config key '{edge.key}': parent is not a dict",
                        **where)
  if edge.op == pb.Action.SET:
    parent[last] = copy.deepcopy(edge.value)
  elif edge.op == pb.Action.APPEND:
    if isinstance(last, str) and last not in parent:
      parent[last] = []
    target = parent[last]
    if not isinstance(target, list):
      raise GraphNasError(f"config key '{edge.key}': APPEND to a non-list",
                          **where)
    target.append({} if edge.value is None else copy.deepcopy(edge.value))
  elif edge.op == pb.Action.ADD:
    current = parent.get(last, 0) if isinstance(parent, dict) else parent[last]
    if isinstance(current, bool) or not isinstance(current, (int, float)):
      raise GraphNasError(f"config key '{edge.key}': ADD to a non-number",
                          **where)
    result = current + edge.value
    if isinstance(result, float) and not math.isfinite(result):
      raise GraphNasError(f"config key '{edge.key}': ADD gives {result} "
                          f"({current!r} + {edge.value!r})", **where)
    parent[last] = result


def _quote(name: str) -> str:
  """A user-given name for a message: 'name', escaped when not printable."""
  return f"'{name}'" if not _bad_text(name) else repr(name)


def _dot_quote(text: str) -> str:
  """A DOT double-quoted string (quotes and backslashes escaped)."""
  return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fmt(v):
  if isinstance(v, float):
    return repr(v)
  return str(v)


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
  """

  def __init__(self, proto: pb.SearchSpace, source: str = "<string>",
               text: Optional[str] = None):
    self.proto = proto
    self.source = source
    self._text = text
    self.name = proto.name or os.path.splitext(os.path.basename(source))[0]
    self._build()

  # ---------------------------------------------------------------- loading
  _validate_keys = True  # the key path checks (off for a linear twin)

  def _field_lines(self, field):
    """Line numbers of each top-level-or-nested `field {` in the text, in
    order, with comments dropped (strings kept); [] without text."""
    if not self._text:
      return []
    text = getattr(self, "_clean_text", None)
    if text is None:
      text = re.sub(r'("(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')|#[^\n]*',
                    lambda m: m.group(1) or "", self._text)
      self._clean_text = text
    starts = [m.start() for m in
              re.finditer(r"\b%s\s*:?\s*[{<]" % field, text)]
    return [(pos, text.count("\n", 0, pos) + 1) for pos in starts]

  def _line_of(self, vertex=None, action=None, vi=None, spec=None):
    """Best-effort line number of a vertex / action in the source text."""
    if not self._text or vertex is None:
      return None
    verts = self._field_lines("vertices")
    if vi is not None and len(verts) == len(self.proto.vertices):
      # One `vertices {` per vertex: count them (names may repeat).
      line = verts[vi][1]
      if spec is None:
        return line
      return self._action_line(vi, spec) or line
    lines = self._text.splitlines()
    pat_v = re.compile(r'name\s*:\s*"%s"' % re.escape(vertex))
    start = None
    for i, line in enumerate(lines):
      if pat_v.search(line):
        start = i
        break
    if start is None:
      return None
    if action is None:
      return start + 1
    pat_a = re.compile(r'name\s*:\s*"%s"' % re.escape(action))
    for i in range(start + 1, len(lines)):
      if pat_a.search(lines[i]):
        return i + 1
    return start + 1

  def _action_line(self, vi, spec):
    """The line of action `spec` of vertex `vi` when the text's `vertices`
    and `actions` blocks can be counted (else None: no guess)."""
    verts = self._field_lines("vertices")
    if not verts or len(verts) != len(self.proto.vertices):
      return None
    pos = verts[vi][0]
    end = verts[vi + 1][0] if vi + 1 < len(verts) else None
    acts = [l for p, l in self._field_lines("actions")
            if p > pos and (end is None or p < end)]
    if len(acts) != len(self.proto.vertices[vi].actions):
      return None
    return acts[spec]

  def _edge_clash(self, vi, first, second, edge_name):
    """Message: actions `first` and `second` of vertex `vi` both expand to
    an edge named `edge_name` (with their lines when known and not one)."""
    lines = {spec: self._action_line(vi, spec) for spec in (first, second)}
    if lines[first] == lines[second]:
      lines = {}

    def action(spec):
      where = f" (line {lines[spec]})" if lines.get(spec) else ""
      return f"action {_quote(self.proto.vertices[vi].actions[spec].name)}" \
          f"{where}"
    return (f"{action(first)} and {action(second)} both make an edge named "
            f"{_quote(edge_name)} (an action's values expand to edges named "
            "\"name=value\"); rename one of the two actions")

  def _error(self, message, vertex=None, action=None, vi=None, spec=None):
    return GraphNasError(message, source=self.source,
                         line=self._line_of(vertex, action, vi, spec),
                         vertex=vertex, action=action)

  def _default_line(self, i):
    lines = self._field_lines("defaults")
    return lines[i][1] if len(lines) == len(self.proto.defaults) else None

  def _default_error(self, message, i):
    return GraphNasError(f"defaults: {message}", source=self.source,
                         line=self._default_line(i))

  def _expand(self, vi: int, v: pb.Vertex, a: pb.Action, spec: int,
              index: dict) -> List[Edge]:
    label = a.name if a.name and not _bad_text(a.name) else f"#{spec}"
    err = lambda m: self._error(m, v.name, label, vi, spec)
    if not a.name:
      raise err("action has no name")
    if _bad_text(a.name):
      raise err(f"action name {a.name!r} {_bad_text(a.name)}")
    if a.op not in pb.Action.Op.values():
      raise err(f"op {a.op} is not one of "
                f"{', '.join(pb.Action.Op.keys())}")
    if not a.target:
      raise err("action has no target vertex")
    if a.target not in index:
      raise err(f"target {_quote(a.target)} is not a vertex of this space")
    sources = [a.HasField("value"), len(a.int_values) > 0,
               len(a.float_values) > 0, len(a.string_values) > 0,
               a.HasField("int_range")]
    if sum(sources) > 1:
      raise err("give at most one of value, int_values, float_values, "
                "string_values, int_range")
    if a.key:
      try:
        parse_key(a.key)
      except ValueError as e:
        raise err(str(e)) from None
    elif a.op != pb.Action.SET or sum(sources):
      raise err("an action with a value or an APPEND/ADD op needs a key")
    if a.HasField("value") and _value(a.value) is None:
      raise err("value {} is empty: set int_value, float_value, "
                "string_value or bool_value")
    multi = None
    if a.HasField("int_range"):
      r = a.int_range
      step = r.step or 1
      if step < 0:
        raise err(f"int_range step {step} must be positive")
      if r.stop < r.start:
        raise err(f"int_range is empty: stop {r.stop} < start {r.start}")
      count = (r.stop - r.start) // step + 1
      if count > MAX_ACTIONS_PER_VERTEX:
        raise err(f"int_range has {count} values, more than the limit of "
                  f"{MAX_ACTIONS_PER_VERTEX} actions per vertex")
      multi = range(r.start, r.stop + 1, step)
    elif a.int_values:
      multi = list(a.int_values)
    elif a.float_values:
      multi = list(a.float_values)
    elif a.string_values:
      multi = list(a.string_values)
    elif not a.HasField("value") and a.op == pb.Action.ADD:
      raise err("ADD needs a numeric value")
    elif not a.HasField("value") and a.op == pb.Action.SET and a.key:
      raise err(f"sets '{a.key}' but gives no value (an empty value list?)")
    values = [_value(a.value)] if multi is None else multi
    if multi is not None and len(values) > MAX_ACTIONS_PER_VERTEX:
      raise err(f"{len(values)} values, more than the limit of "
                f"{MAX_ACTIONS_PER_VERTEX} actions per vertex")
    if not isinstance(values, range):
      for x in values:
        fault = _value_fault(x)
        if fault:
          raise err(f"value {fault}")
    if a.op == pb.Action.ADD:
      for x in values:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
          raise err(f"ADD needs a numeric value, got {x!r}")
    target = index[a.target]
    if multi is None:
      return [Edge(a.name, target, a.key, a.op, values[0], a.ends_config,
                   spec)]
    return [Edge(f"{a.name}={_fmt(x)}", target, a.key, a.op, x,
                 a.ends_config, spec) for x in values]

  def _build(self):
    p = self.proto
    if _bad_text(p.name):
      raise GraphNasError(f"space name {p.name!r} {_bad_text(p.name)}",
                          source=self.source)
    if not p.vertices:
      raise GraphNasError("the space has no vertices", source=self.source)
    index = {}
    for i, v in enumerate(p.vertices):
      if not v.name:
        raise GraphNasError(f"vertex #{i} has no name", source=self.source)
      if _bad_text(v.name):
        raise GraphNasError(f"vertex #{i}: name {v.name!r} "
                            f"{_bad_text(v.name)}", source=self.source)
      if v.name in index:
        raise self._error(f"duplicate vertex name (also vertex "
                          f"#{index[v.name]})", v.name, vi=i)
      index[v.name] = i
    if not p.start:
      raise GraphNasError("no start vertex: set `start: \"<vertex name>\"`",
                          source=self.source)
    if p.start not in index:
      raise GraphNasError(f"start vertex {_quote(p.start)} is not a vertex "
                          "of this space", source=self.source)
    if p.max_steps < 0:
      raise GraphNasError(f"max_steps {p.max_steps} must not be negative",
                          source=self.source)
    if p.linear_unroll < 0:
      raise GraphNasError(f"linear_unroll {p.linear_unroll} must not be "
                          "negative", source=self.source)
    self.vertex_names = [v.name for v in p.vertices]
    self.vertex_index = index
    self.start = index[p.start]
    self.edges: List[List[Edge]] = []
    total = 0
    for vi, v in enumerate(p.vertices):
      edges = []
      names = {}  # action name -> spec
      for spec, a in enumerate(v.actions):
        if a.name and a.name in names:
          raise self._error(f"duplicate action name within the vertex "
                            f"(also action #{names[a.name]})", v.name,
                            a.name, vi, spec)
        names[a.name] = spec
        edges.extend(self._expand(vi, v, a, spec, index))
        if len(edges) > MAX_ACTIONS_PER_VERTEX:
          raise self._error(f"{len(edges)} actions, more than the limit of "
                            f"{MAX_ACTIONS_PER_VERTEX} per vertex", v.name,
                            vi=vi)
      seen = {}  # expanded edge name -> spec
      for e in edges:
        if e.name in seen:
          a = v.actions[e.spec]
          if seen[e.name] == e.spec:
            raise self._error(f"value {_fmt(e.value)} is given twice (two "
                              f"edges named {_quote(e.name)})",
                              v.name, a.name, vi, e.spec)
          raise self._error(self._edge_clash(vi, seen[e.name], e.spec,
                                             e.name),
                            v.name, a.name, vi, e.spec)
        seen[e.name] = e.spec
      for c in v.active_if:
        if not c.key:
          raise self._error("active_if condition has no key", v.name, vi=vi)
        try:
          parse_key(c.key)
        except ValueError as e:
          raise self._error(f"active_if: {e}", v.name, vi=vi) from None
        if _value(c.equals) is None:
          raise self._error(f"active_if on '{c.key}' has no value to equal",
                            v.name, vi=vi)
        fault = _value_fault(_value(c.equals))
        if fault:
          raise self._error(f"active_if on '{c.key}': value {fault}",
                            v.name, vi=vi)
      total += len(edges)
      if total > MAX_TOTAL_ACTIONS:
        raise GraphNasError(f"more than {MAX_TOTAL_ACTIONS} actions in all",
                            source=self.source)
      self.edges.append(edges)
    self._build_defaults()
    self.conditions = [[(parse_key(c.key), _value(c.equals))
                        for c in v.active_if] for v in p.vertices]

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
    self._check_graph()
    if self._validate_keys:
      self._check_keys()

  def _build_defaults(self):
    """Parses `defaults` into self.defaults; each key once, values only."""
    self.defaults = {}
    given = {}  # path -> index of the default
    for i, d in enumerate(self.proto.defaults):
      try:
        path = tuple(parse_key(d.key))
      except ValueError as e:
        raise self._default_error(str(e), i) from None
      if any(isinstance(t, int) for t in path):
        raise self._default_error(
            f"'{d.key}': a default cannot index a list (lists are made by "
            "APPEND actions; defaults set values and fields)", i)
      value = _value(d.value)
      if value is None:
        raise self._default_error(f"'{d.key}' has no value", i)
      fault = _value_fault(value)
      if fault:
        raise self._default_error(f"'{d.key}': value {fault}", i)
      for other, j in given.items():
        if other == path:
          line = self._default_line(j)
          also = f"line {line}" if line else f"default #{j}"
          raise self._default_error(
              f"'{d.key}' is given twice (also on {also})", i)
        short, long_ = sorted((other, path), key=len)
        if long_[:len(short)] == short:
          raise self._default_error(
              f"'{format_path(long_)}' is a field of '{format_path(short)}',"
              f" which defaults also set to a value", i)
      given[path] = i
      apply_edge(self.defaults, Edge("default", 0, d.key, pb.Action.SET,
                                     value, False, 0),
                 {"source": self.source})

  # ------------------------------------------------------ key path checks
  def _check_keys(self):
    """Faults of config keys that need no walk to be known.

    Lists are made only by APPEND (defaults set values and fields; a list
    element is a dict or a value, never a list), and nothing turns a value
    or a dict into a list. So these always fail and are errors: an index
    after an index ("a[0][1]"), APPEND to a list element ("a[-1]"), a key
    through a default value ("a.b" when defaults set "a"), a list where
    defaults make a dict or a value, ADD to a non-numeric default that no
    action sets to a number, and a key through a list that no walk appends
    to before the action. A list that only some walks append to first is a
    SpaceWarning (those walks fail to decode).
    """
    p = self.proto
    uses = []  # (vi, spec, action, path)
    for vi, v in enumerate(p.vertices):
      for spec, a in enumerate(v.actions):
        if a.key:
          uses.append((vi, spec, a, parse_key(a.key)))
    set_numbers = {_schema(path) for vi, spec, a, path in uses
                   if a.op == pb.Action.SET and any(
                       not isinstance(e.value, (bool, str)) and
                       e.value is not None
                       for e in self.edges[vi] if e.spec == spec)}
    for vi, spec, a, path in uses:
      err = lambda m, vi=vi, spec=spec, a=a: self._error(
          m, p.vertices[vi].name, a.name, vi, spec)
      for i in range(1, len(path)):
        if isinstance(path[i], int) and isinstance(path[i - 1], int):
          raise err(f"config key '{a.key}': an element of a list is a dict "
                    "or a value, never a list (no [i][j])")
      if a.op == pb.Action.APPEND and isinstance(path[-1], int):
        raise err(f"APPEND to '{a.key}', an element of a list (a dict or a "
                  f"value, never a list); APPEND to "
                  f"'{format_path(path[:-1])}' adds an element")
      fault = self._default_fault(a, path, set_numbers)
      if fault:
        raise err(fault)
    for vi, v in enumerate(p.vertices):
      for c in v.active_if:
        path = parse_key(c.key)
        for i in range(1, len(path)):
          if isinstance(path[i], int) and isinstance(path[i - 1], int):
            raise self._error(f"active_if on '{c.key}' never holds: an "
                              "element of a list is never a list (no [i][j])",
                              v.name, vi=vi)
    self._check_list_flow(uses)

  def _default_fault(self, a, path, set_numbers) -> Optional[str]:
    """Why `a` always fails on what defaults set, or None."""
    node = self.defaults
    for i, tok in enumerate(path):
      prefix = format_path(path[:i])
      if not isinstance(node, dict):
        return (f"config key '{a.key}' goes through '{prefix}', which "
                f"defaults set to {node!r} (a value has no fields or "
                "elements)")
      if isinstance(tok, int):
        if i > 0:
          return (f"config key '{a.key}': '{prefix}' is a list here, but "
                  f"defaults make it a dict of fields (a dict never becomes "
                  "a list)")
        return None
      if tok not in node:
        return None
      node = node[tok]
    # `node` is what defaults set at exactly this key.
    if a.op == pb.Action.APPEND:
      what = "a dict of fields" if isinstance(node, dict) else repr(node)
      return (f"APPEND to '{a.key}', which defaults set to {what} (not a "
              "list, and nothing turns it into one)")
    if a.op == pb.Action.ADD and (isinstance(node, (dict, str, bool))) and \
        _schema(path) not in set_numbers:
      what = "a dict of fields" if isinstance(node, dict) else repr(node)
      return (f"ADD to '{a.key}', which defaults set to {what} and no "
              "action sets to a number")
    return None

  def _check_list_flow(self, uses):
    """Errors for keys through a list that no walk can have appended to."""
    p = self.proto
    succ = [sorted({e.target for e in edges}) for edges in self.edges]
    # Lists each APPEND makes, and the vertices its edges lead to.
    made = {}  # list schema -> set of target vertices
    for vi, spec, a, path in uses:
      if a.op == pb.Action.APPEND and self.reachable[vi]:
        made.setdefault(_schema(path), set()).add(
            self.vertex_index[a.target])

    def closure(seeds):
      seen = set(seeds)
      stack = list(seeds)
      while stack:
        u = stack.pop()
        for w in succ[u]:
          if w not in seen:
            seen.add(w)
            stack.append(w)
      return seen

    moves = []

    def missing_at(schema):
      """Vertices some walk reaches with no APPEND to `schema` applied."""
      if not moves:
        # Per vertex, its distinct moves: (target, ends_config, the list it
        # surely appends to -- None if none or its vertex has active_if).
        for u, v in enumerate(p.vertices):
          specs = [_schema(parse_key(a.key))
                   if a.op == pb.Action.APPEND and not v.active_if else None
                   for a in v.actions]
          moves.append({(e.target, e.ends_config, specs[e.spec])
                        for e in self.edges[u]})
      seen = {self.start}
      stack = [self.start]
      while stack:
        u = stack.pop()
        for target, ends_config, makes in moves[u]:
          if makes == schema or ends_config or target in seen:
            continue  # after an ends_config edge nothing applies
          seen.add(target)
          stack.append(target)
      return seen

    after, missing = {}, {}
    warned = set()
    for vi, spec, a, path in uses:
      if not self.reachable[vi]:
        continue
      for i, tok in enumerate(path):
        if not isinstance(tok, int):
          continue
        schema = _schema(path[:i])
        prefix = format_path(path[:i])
        if schema not in after:
          after[schema] = closure(made.get(schema, ()))
        if vi not in after[schema]:
          raise self._error(
              f"config key '{a.key}' uses the list '{prefix}', but no walk "
              f"appends to '{prefix}' before this vertex (add an APPEND "
              f"action with key '{prefix}' on the way here)",
              p.vertices[vi].name, a.name, vi, spec)
        if schema not in missing:
          missing[schema] = missing_at(schema)
        if (vi in missing[schema] and not p.vertices[vi].active_if and
            (vi, schema) not in warned):
          warned.add((vi, schema))
          warnings.warn(
              f"{self.source}: vertex '{p.vertices[vi].name}', action "
              f"'{a.name}': some walks reach it before any APPEND to "
              f"'{prefix}' (they fail to decode: config key '{a.key}')",
              SpaceWarning, stacklevel=5)

  def _check_graph(self):
    n = len(self.vertex_names)
    succ = [sorted({e.target for e in edges}) for edges in self.edges]
    pred = [[] for _ in range(n)]
    for u in range(n):
      for w in succ[u]:
        pred[w].append(u)
    # Vertices from which a terminal is reachable (reverse BFS).
    good = [bool(t) for t in self.terminal]
    stack = [i for i in range(n) if good[i]]
    while stack:
      w = stack.pop()
      for u in pred[w]:
        if not good[u]:
          good[u] = True
          stack.append(u)
    reach = [False] * n
    reach[self.start] = True
    stack = [self.start]
    while stack:
      u = stack.pop()
      for w in succ[u]:
        if not reach[w]:
          reach[w] = True
          stack.append(w)
    for i in range(n):
      if reach[i] and not good[i]:
        raise self._error("no terminal vertex is reachable from this vertex "
                          "(every walk through it would loop forever)",
                          self.vertex_names[i])
    unreachable = [self.vertex_names[i] for i in range(n) if not reach[i]]
    if unreachable:
      warnings.warn(f"{self.source}: vertices not reachable from start "
                    f"'{self.vertex_names[self.start]}': "
                    f"{', '.join(unreachable)}", SpaceWarning, stacklevel=4)
    self.reachable = np.array(reach)
    self.topo_order = self._topological_order(succ)
    self.is_cyclic = self.topo_order is None
    if self.is_cyclic:
      if self.proto.max_steps <= 0:
        raise GraphNasError("the graph has a cycle: set a positive "
                            "max_steps to bound its walks", source=self.source)
      self.max_steps = int(self.proto.max_steps)
    else:
      longest = self._longest_path(succ)
      if self.proto.max_steps and self.proto.max_steps < longest:
        raise GraphNasError(f"max_steps {self.proto.max_steps} is shorter "
                            f"than the longest walk ({longest} steps) of "
                            "this acyclic graph", source=self.source)
      self.max_steps = int(self.proto.max_steps or longest)
    self.max_steps = max(self.max_steps, 1)

  def _topological_order(self, succ):
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

  def _longest_path(self, succ):
    dist = [0] * len(succ)
    for u in reversed(self.topo_order):
      dist[u] = max([dist[w] + 1 for w in succ[u]], default=0)
    return dist[self.start]

  # --------------------------------------------------------------- walking
  def check_walk(self, actions: Sequence[int]) -> Walk:
    """Validates a sequence of action indices; returns the Walk."""
    cur = self.start
    vertices = [cur]
    for t, a in enumerate(actions):
      a = int(a)
      if self.terminal[cur]:
        raise GraphNasError(f"walk goes on after terminal vertex at step {t}",
                            source=self.source, vertex=self.vertex_names[cur])
      if not 0 <= a < self.num_actions[cur]:
        raise GraphNasError(f"action index {a} at step {t} is out of range "
                            f"(the vertex has {self.num_actions[cur]})",
                            source=self.source, vertex=self.vertex_names[cur])
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
    """Decodes a walk (its action indices) into the architecture config."""
    walk = self.check_walk(actions)
    config = copy.deepcopy(self.defaults)
    frozen = False
    for v, a in zip(walk.vertices, walk.actions):
      edge = self.edges[v][a]
      if not frozen and self._active(v, config):
        apply_edge(config, edge, {"source": self.source,
                                  "vertex": self.vertex_names[v],
                                  "action": edge.name})
      frozen = frozen or edge.ends_config
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

  def sample_random(self, rng: np.random.Generator) -> Walk:
    """One walk, uniform over the actions at every visited vertex."""
    cur = self.start
    actions, vertices = [], [cur]
    while not self.terminal[cur] and len(actions) < self.max_steps:
      a = int(rng.integers(self.num_actions[cur]))
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
    q = _dot_quote
    lines = [f"digraph {q(self.name)} {{", "  rankdir=LR;",
             '  node [shape=box, style=rounded, fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for i, name in enumerate(self.vertex_names):
      attrs = []
      if self.terminal[i]:
        attrs.append("shape=doublecircle")
      if i == self.start:
        attrs.append("penwidth=2")
      lines.append(f'  {q(name)} [{", ".join(attrs)}];' if attrs
                   else f"  {q(name)};")
    for i, v in enumerate(self.proto.vertices):
      for spec, a in enumerate(v.actions):
        expanded = [e for e in self.edges[i] if e.spec == spec]
        label = a.name
        if a.key:
          label += "\n" + a.key
        if len(expanded) > 1:
          label += (f" in {{{_fmt(expanded[0].value)}.."
                    f"{_fmt(expanded[-1].value)}}} ({len(expanded)})")
        elif a.HasField("value"):
          sym = {pb.Action.SET: "=", pb.Action.ADD: "+=",
                 pb.Action.APPEND: "append"}[a.op]
          label += f" {sym} {_fmt(_value(a.value))}"
        # Names and values hold no control characters (validated): the
        # only newline is the one put there, written as DOT's "\n".
        text = _dot_quote(label)[1:-1].replace("\n", "\\n")
        lines.append(f'  {q(v.name)} -> {q(a.target)} [label="{text}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"

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
  The config therefore has the graph's schema.
  """

  _validate_keys = False  # its config is the graph's (decode replays it)

  def __init__(self, graph: SearchSpace, unroll: Optional[int] = None):
    self.graph = graph
    slots: List[Tuple[int, Optional[int]]] = []
    if not graph.is_cyclic and unroll is None:
      slots = [(v, None) for v in graph.topo_order
               if graph.reachable[v] and not graph.terminal[v]]
    else:
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
    self.slots = slots
    # Sizes known before the proto is built: no giant twin only to refuse it.
    total = sum(int(graph.num_actions[v]) for v, _ in slots)
    if total > MAX_TOTAL_ACTIONS:
      raise GraphNasError(f"the linear twin would have {total} actions, more "
                          f"than {MAX_TOTAL_ACTIONS}", source=graph.source)
    if (len(slots) + 1) * graph.max_actions > MAX_TABLE_ENTRIES:
      raise GraphNasError(f"the linear twin's {len(slots) + 1} slots x "
                          f"{graph.max_actions} actions is too large a table",
                          source=graph.source)
    proto = pb.SearchSpace(name=f"{graph.name}_linear_twin",
                           description=f"linear twin of {graph.name}",
                           task=graph.proto.task)
    proto.task_params.update(graph.proto.task_params)
    names, used = [], set()
    for name in [graph.vertex_names[v] + ("" if t is None else f"@{t}")
                 for v, t in slots] + ["end"]:
      while name in used:  # "a@1" may also be a graph vertex's own name
        name = "_" + name
      used.add(name)
      names.append(name)
    proto.start = names[0]
    for i, (v, _) in enumerate(slots):
      vert = proto.vertices.add(name=names[i])
      for a in graph.proto.vertices[v].actions:
        copy_a = vert.actions.add()
        copy_a.CopyFrom(a)
        copy_a.target = names[i + 1]
    proto.vertices.add(name=names[-1])
    super().__init__(proto, source=f"{graph.source} (linear twin)")

  def to_graph_actions(self, actions: Sequence[int]) -> List[int]:
    """The graph walk a linear walk stands for (replay; see class doc)."""
    self.check_walk(actions)
    g = self.graph
    cur, t, out = g.start, 0, []
    for (v, step), a in zip(self.slots, actions):
      if g.terminal[cur]:
        break
      if v == cur and (step is None or step == t):
        out.append(int(a))
        cur = int(g.next_vertex[cur, a])
        t += 1
    return out

  def decode(self, actions: Sequence[int]) -> dict:
    graph_actions = self.to_graph_actions(actions)
    g = self.graph
    # A replay may stop at a non-terminal (unrolled loop exhausted): decode
    # what was built, as for a graph walk truncated by max_steps.
    config = copy.deepcopy(g.defaults)
    frozen = False
    cur = g.start
    for a in graph_actions:
      edge = g.edges[cur][a]
      if not frozen and g._active(cur, config):
        apply_edge(config, edge, {"source": g.source,
                                  "vertex": g.vertex_names[cur],
                                  "action": edge.name})
      frozen = frozen or edge.ends_config
      cur = edge.target
    return config


_BOM = "\ufeff"


def loads(text: str, source: str = "<string>") -> SearchSpace:
  """Parses and validates a textproto given as a string (or as UTF-8
  bytes). A leading byte-order mark (some Windows editors write one) is
  dropped."""
  if isinstance(text, (bytes, bytearray)):
    try:
      text = bytes(text).decode("utf-8")
    except UnicodeDecodeError as e:
      raise GraphNasError(f"cannot parse textproto: not UTF-8 ({e})",
                          source=source) from None
  if text.startswith(_BOM):
    text = text[len(_BOM):]
  proto = pb.SearchSpace()
  try:
    text_format.Parse(text, proto)
  except text_format.ParseError as e:
    line = getattr(e, "GetLine", lambda: None)()
    msg = str(e)
    # ParseError's message starts with "line:col : " already.
    msg = re.sub(r"^\d+:\d+\s*:\s*", "", msg)
    col = getattr(e, "GetColumn", lambda: None)()
    where = f"{line}:{col}" if line and col else line
    raise GraphNasError(f"cannot parse textproto: {msg}", source=source,
                        line=where) from None
  except (UnicodeDecodeError, ValueError) as e:
    raise GraphNasError(f"cannot parse textproto: {e}", source=source) \
        from None
  return SearchSpace(proto, source=source, text=text)


# The shipped spaces (protos/*.textproto): in an installed package they are
# package data (graph_nas/protos_data, see setup.py); in a source checkout
# (or an editable install) they are the repository's protos/.
_HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED_DIRS = (os.path.join(_HERE, "protos_data"),
                os.path.join(os.path.dirname(_HERE), "protos"))
_SUFFIX = ".textproto"


def shipped_spaces() -> dict:
  """{name: path} of the spaces shipped with graph-nas (name: the file
  name without .textproto, e.g. "cifar_cpu")."""
  for folder in SHIPPED_DIRS:
    try:
      names = sorted(n for n in os.listdir(folder) if n.endswith(_SUFFIX))
    except OSError:
      continue
    if names:
      return {n[:-len(_SUFFIX)]: os.path.join(folder, n) for n in names}
  return {}


def find(name_or_path: str) -> str:
  """The file of a space given by path, or by a shipped space's name.

  An existing file is used as given. Otherwise a bare name ("cifar_cpu", or
  "cifar_cpu.textproto" without a folder) is looked up among the shipped
  spaces. Anything else is an error that lists the shipped names."""
  if os.path.isfile(name_or_path):
    return name_or_path
  shipped = shipped_spaces()
  bare = not os.path.dirname(name_or_path)
  name = name_or_path[:-len(_SUFFIX)] if name_or_path.endswith(_SUFFIX) \
      else name_or_path
  if bare and name in shipped:
    return shipped[name]
  listing = ", ".join(shipped) or "none found"
  if bare and not name_or_path.endswith(_SUFFIX):
    raise GraphNasError(f"no search space {name_or_path!r}: not a file, nor "
                        f"a shipped space (shipped: {listing})")
  raise GraphNasError(f"no such search space file (or give a shipped space "
                      f"by name: {listing})", source=name_or_path)


def load(path: str) -> SearchSpace:
  """Loads and validates a search space textproto file; `path` may also
  be a shipped space's name (see find)."""
  path = find(path)
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except FileNotFoundError:
    raise GraphNasError("no such search space file", source=path) from None
  except (OSError, UnicodeDecodeError) as e:
    raise GraphNasError(f"cannot read: {e}", source=path) from None
  return loads(text, source=path)


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
