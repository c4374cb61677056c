"""Proto expansion: the validated message turned into edges and defaults.

Each Action message expands to one :class:`Edge` per value it gives (a
single ``value``, or ``int_values`` / ``float_values`` / ``string_values``
/ ``int_range``, one edge named "name=value" each). Here every vertex,
action, ``active_if`` condition and default is checked for what can be
known from the message alone (names, targets, ops, values, limits); the
errors carry the textproto line (see :mod:`graph_nas.space.lines`).
"""

from typing import Dict, List

from graph_nas.errors import GraphNasError
from graph_nas.protos import search_space_pb2 as pb
from graph_nas.space.base import (MAX_ACTIONS_PER_VERTEX, MAX_TOTAL_ACTIONS,
                                  Edge, _bad_text, _fmt, _quote, _value,
                                  _value_fault)
from graph_nas.space.config import apply_edge, format_path, parse_key
from graph_nas.space.lines import SourceLines


def index_vertices(p: pb.SearchSpace, lines: SourceLines) -> Dict[str, int]:
  """Checks the space's name, vertex names, start and step bounds; returns
  {vertex name: vertex id}."""
  source = lines.source
  if _bad_text(p.name):
    raise GraphNasError(f"space name {p.name!r} {_bad_text(p.name)}",
                        source=source)
  if not p.vertices:
    raise GraphNasError("the space has no vertices", source=source)
  index = {}
  for i, v in enumerate(p.vertices):
    if not v.name:
      raise GraphNasError(f"vertex #{i} has no name", source=source)
    if _bad_text(v.name):
      raise GraphNasError(f"vertex #{i}: name {v.name!r} "
                          f"{_bad_text(v.name)}", source=source)
    if v.name in index:
      raise lines.error(f"duplicate vertex name (also vertex "
                        f"#{index[v.name]})", v.name, vi=i)
    index[v.name] = i
  if not p.start:
    raise GraphNasError("no start vertex: set `start: \"<vertex name>\"`",
                        source=source)
  if p.start not in index:
    raise GraphNasError(f"start vertex {_quote(p.start)} is not a vertex "
                        "of this space", source=source)
  if p.max_steps < 0:
    raise GraphNasError(f"max_steps {p.max_steps} must not be negative",
                        source=source)
  if p.linear_unroll < 0:
    raise GraphNasError(f"linear_unroll {p.linear_unroll} must not be "
                        "negative", source=source)
  return index


def expand_vertices(p: pb.SearchSpace, index: Dict[str, int],
                    lines: SourceLines) -> List[List[Edge]]:
  """Per vertex, its expanded edges (the action index is the position)."""
  out = []
  total = 0
  for vi, v in enumerate(p.vertices):
    edges = _expand_vertex(vi, v, index, lines)
    _check_conditions(vi, v, lines)
    total += len(edges)
    if total > MAX_TOTAL_ACTIONS:
      raise GraphNasError(f"more than {MAX_TOTAL_ACTIONS} actions in all",
                          source=lines.source)
    out.append(edges)
  return out


def conditions(p: pb.SearchSpace):
  """Per vertex, its active_if conditions as (key path, value) pairs."""
  return [[(parse_key(c.key), _value(c.equals)) for c in v.active_if]
          for v in p.vertices]


def _expand_vertex(vi: int, v: pb.Vertex, index: Dict[str, int],
                   lines: SourceLines) -> List[Edge]:
  """The edges of vertex `vi`: its actions expanded, names checked."""
  edges = []
  names = {}  # action name -> spec
  for spec, a in enumerate(v.actions):
    if a.name and a.name in names:
      raise lines.error(f"duplicate action name within the vertex "
                        f"(also action #{names[a.name]})", v.name,
                        a.name, vi, spec)
    names[a.name] = spec
    edges.extend(expand_action(vi, v, a, spec, index, lines))
    if len(edges) > MAX_ACTIONS_PER_VERTEX:
      raise lines.error(f"{len(edges)} actions, more than the limit of "
                        f"{MAX_ACTIONS_PER_VERTEX} per vertex", v.name,
                        vi=vi)
  _check_edge_names(vi, v, edges, lines)
  return edges


def _check_edge_names(vi: int, v: pb.Vertex, edges: List[Edge],
                      lines: SourceLines) -> None:
  """Two edges of one vertex may not share a name."""
  seen = {}  # expanded edge name -> spec
  for e in edges:
    if e.name in seen:
      a = v.actions[e.spec]
      if seen[e.name] == e.spec:
        raise lines.error(f"value {_fmt(e.value)} is given twice (two "
                          f"edges named {_quote(e.name)})",
                          v.name, a.name, vi, e.spec)
      raise lines.error(_edge_clash(lines, vi, seen[e.name], e.spec,
                                    e.name),
                        v.name, a.name, vi, e.spec)
    seen[e.name] = e.spec


def _edge_clash(lines: SourceLines, vi, first, second, edge_name):
  """Message: actions `first` and `second` of vertex `vi` both expand to
  an edge named `edge_name` (with their lines when known and not one)."""
  at = {spec: lines.action_line(vi, spec) for spec in (first, second)}
  if at[first] == at[second]:
    at = {}

  def action(spec):
    where = f" (line {at[spec]})" if at.get(spec) else ""
    return f"action {_quote(lines.proto.vertices[vi].actions[spec].name)}" \
        f"{where}"
  return (f"{action(first)} and {action(second)} both make an edge named "
          f"{_quote(edge_name)} (an action's values expand to edges named "
          "\"name=value\"); rename one of the two actions")


def _check_conditions(vi: int, v: pb.Vertex, lines: SourceLines) -> None:
  """Each active_if condition has a valid key and a usable value."""
  for c in v.active_if:
    if not c.key:
      raise lines.error("active_if condition has no key", v.name, vi=vi)
    try:
      parse_key(c.key)
    except ValueError as e:
      raise lines.error(f"active_if: {e}", v.name, vi=vi) from None
    if _value(c.equals) is None:
      raise lines.error(f"active_if on '{c.key}' has no value to equal",
                        v.name, vi=vi)
    fault = _value_fault(_value(c.equals))
    if fault:
      raise lines.error(f"active_if on '{c.key}': value {fault}",
                        v.name, vi=vi)


def expand_action(vi: int, v: pb.Vertex, a: pb.Action, spec: int,
                  index: Dict[str, int], lines: SourceLines) -> List[Edge]:
  """The edges action `spec` of vertex `vi` expands to, checked."""
  label = a.name if a.name and not _bad_text(a.name) else f"#{spec}"
  err = lambda m: lines.error(m, v.name, label, vi, spec)
  _check_action(a, index, err)
  multi = _multi_values(a, err)
  values = [_value(a.value)] if multi is None else multi
  _check_values(a, values, multi is not None, err)
  target = index[a.target]
  if multi is None:
    return [Edge(a.name, target, a.key, a.op, values[0], a.ends_config,
                 spec)]
  return [Edge(f"{a.name}={_fmt(x)}", target, a.key, a.op, x,
               a.ends_config, spec) for x in values]


def _check_action(a: pb.Action, index: Dict[str, int], err) -> None:
  """The action's name, op, target, key and choice of value fields."""
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
             a.HasField("int_range"), a.HasField("float_range")]
  if sum(sources) > 1:
    raise err("give at most one of value, int_values, float_values, "
              "string_values, int_range, float_range")
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
  if a.max_taken < 0:
    raise err(f"max_taken {a.max_taken} must not be negative (0: no "
              "limit)")


def _multi_values(a: pb.Action, err):
  """The values of a list or range action (a range or a list), or None for
  an action with a single `value` (or none)."""
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
    return range(r.start, r.stop + 1, step)
  if a.HasField("float_range"):
    return float_range_values(a.float_range, err)
  if a.int_values:
    return list(a.int_values)
  if a.float_values:
    return list(a.float_values)
  if a.string_values:
    return list(a.string_values)
  if not a.HasField("value") and a.op == pb.Action.ADD:
    raise err("ADD needs a numeric value")
  if not a.HasField("value") and a.op == pb.Action.SET and a.key:
    raise err(f"sets '{a.key}' but gives no value (an empty value list?)")
  return None


# float_range values are rounded to this many significant digits, so that
# tables, drawings and configs show 0.001, not 0.0010000000000000002.
FLOAT_RANGE_DIGITS = 6


def float_range_values(r: pb.FloatRange, err) -> List[float]:
  """The num values of a float_range, from low to high (both included),
  evenly or (log) geometrically spaced, each rounded to FLOAT_RANGE_DIGITS
  significant digits."""
  import math
  low, high, num = r.low, r.high, r.num
  if not (math.isfinite(low) and math.isfinite(high)):
    raise err(f"float_range low {low!r} and high {high!r} must be finite")
  if not low < high:
    raise err(f"float_range low {low!r} must be below high {high!r}")
  if r.log and low <= 0:
    raise err(f"float_range with log: low {low!r} must be above 0")
  if num < 2:
    raise err(f"float_range num {num} must be at least 2 (low and high)")
  if num > MAX_ACTIONS_PER_VERTEX:
    raise err(f"float_range has {num} values, more than the limit of "
              f"{MAX_ACTIONS_PER_VERTEX} actions per vertex")
  if r.log:
    a, b = math.log(low), math.log(high)
    raw = [math.exp(a + (b - a) * i / (num - 1)) for i in range(num)]
  else:
    raw = [low + (high - low) * i / (num - 1) for i in range(num)]
  raw[0], raw[-1] = low, high
  values = [float(f"{v:.{FLOAT_RANGE_DIGITS}g}") for v in raw]
  if len(set(values)) < num:
    raise err(f"float_range num {num} is too many: its values are not "
              f"distinct at {FLOAT_RANGE_DIGITS} significant digits")
  return values


def _check_values(a: pb.Action, values, multi: bool, err) -> None:
  """The number of values, each one finite and printable, numbers for ADD."""
  if multi and len(values) > MAX_ACTIONS_PER_VERTEX:
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


def build_defaults(p: pb.SearchSpace, lines: SourceLines) -> dict:
  """The config `defaults` make: each key once, values only."""
  defaults = {}
  given = {}  # path -> index of the default
  for i, d in enumerate(p.defaults):
    try:
      path = tuple(parse_key(d.key))
    except ValueError as e:
      raise lines.default_error(str(e), i) from None
    if any(isinstance(t, int) for t in path):
      raise lines.default_error(
          f"'{d.key}': a default cannot index a list (lists are made by "
          "APPEND actions; defaults set values and fields)", i)
    value = _value(d.value)
    if value is None:
      raise lines.default_error(f"'{d.key}' has no value", i)
    fault = _value_fault(value)
    if fault:
      raise lines.default_error(f"'{d.key}': value {fault}", i)
    _check_default_overlap(path, d.key, i, given, lines)
    given[path] = i
    apply_edge(defaults, Edge("default", 0, d.key, pb.Action.SET,
                              value, False, 0),
               {"source": lines.source})
  return defaults


def _check_default_overlap(path, key, i, given, lines: SourceLines) -> None:
  """Default #i (at `path`) neither repeats nor nests in an earlier one."""
  for other, j in given.items():
    if other == path:
      line = lines.default_line(j)
      also = f"line {line}" if line else f"default #{j}"
      raise lines.default_error(
          f"'{key}' is given twice (also on {also})", i)
    short, long_ = sorted((other, path), key=len)
    if long_[:len(short)] == short:
      raise lines.default_error(
          f"'{format_path(long_)}' is a field of '{format_path(short)}',"
          f" which defaults also set to a value", i)
