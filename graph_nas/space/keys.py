"""Static key checks: config-key faults that need no walk to be known.

Lists are made only by APPEND (defaults set values and fields; a list
element is a dict or a value, never a list), and nothing turns a value or a
dict into a list. So these always fail and are errors: an index after an
index ("a[0][1]"), APPEND to a list element ("a[-1]"), a key through a
default value ("a.b" when defaults set "a"), a list where defaults make a
dict or a value, ADD to a non-numeric default that no action sets to a
number, and a key through a list that no walk appends to before the
action. A list that only some walks append to first is a
:class:`SpaceWarning` (those walks fail to decode).

:func:`check_keys` runs on a space whose edges, defaults and reachability
are built (the linear twin skips it: its config is the graph's).
"""

import warnings
from typing import Any, List, Optional, Sequence, Tuple

from graph_nas.errors import SpaceWarning
from graph_nas.protos import search_space_pb2 as pb
from graph_nas.space.analysis import descendants, successors
from graph_nas.space.config import _schema, format_path, parse_key

# (vertex id, action index in the vertex, the Action, its key's path)
Use = Tuple[int, int, pb.Action, List[Any]]


def check_keys(space) -> None:
  """Raises (or warns) for the faults above; `space`: a SearchSpace being
  built (its proto, edges, defaults, reachable, vertex_index, start,
  source and _error)."""
  p = space.proto
  uses = _key_uses(p)
  set_numbers = _numbers_set(space, uses)
  for vi, spec, a, path in uses:
    fault = _shape_fault(a, path) or _default_fault(space.defaults, a, path,
                                                    set_numbers)
    if fault:
      raise space._error(fault, p.vertices[vi].name, a.name, vi, spec)
  for vi, v in enumerate(p.vertices):
    for c in v.active_if:
      if _index_after_index(parse_key(c.key)):
        raise space._error(f"active_if on '{c.key}' never holds: an "
                           "element of a list is never a list (no [i][j])",
                           v.name, vi=vi)
  _check_list_flow(space, uses)


def _key_uses(p: pb.SearchSpace) -> List[Use]:
  """Every action that has a key, with its parsed path."""
  return [(vi, spec, a, parse_key(a.key))
          for vi, v in enumerate(p.vertices)
          for spec, a in enumerate(v.actions) if a.key]


def _numbers_set(space, uses: Sequence[Use]) -> set:
  """Key schemas some SET action sets to a number."""
  return {_schema(path) for vi, spec, a, path in uses
          if a.op == pb.Action.SET and any(
              not isinstance(e.value, (bool, str)) and e.value is not None
              for e in space.edges[vi] if e.spec == spec)}


def _index_after_index(path) -> bool:
  return any(isinstance(path[i], int) and isinstance(path[i - 1], int)
             for i in range(1, len(path)))


def _shape_fault(a: pb.Action, path) -> Optional[str]:
  """Why the key's own shape always fails, or None."""
  if _index_after_index(path):
    return (f"config key '{a.key}': an element of a list is a dict "
            "or a value, never a list (no [i][j])")
  if a.op == pb.Action.APPEND and isinstance(path[-1], int):
    return (f"APPEND to '{a.key}', an element of a list (a dict or a "
            f"value, never a list); APPEND to "
            f"'{format_path(path[:-1])}' adds an element")
  return None


def _default_fault(defaults, a, path, set_numbers) -> Optional[str]:
  """Why `a` always fails on what defaults set, or None."""
  node = defaults
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


class _ListFlow:
  """Where walks may have appended to a list (by its schema), computed
  once per schema when first asked."""

  def __init__(self, space, uses: Sequence[Use]):
    self.space = space
    self.succ = successors(space.edges)
    # Lists each reachable APPEND makes, and the vertices its edges lead to.
    self.made = {}  # list schema -> set of target vertices
    for vi, spec, a, path in uses:
      if a.op == pb.Action.APPEND and space.reachable[vi]:
        self.made.setdefault(_schema(path), set()).add(
            space.vertex_index[a.target])
    self._after, self._missing = {}, {}
    self._moves = None

  def after(self, schema):
    """Vertices some walk reaches after an APPEND to `schema`."""
    if schema not in self._after:
      self._after[schema] = descendants(self.succ,
                                        self.made.get(schema, ()))
    return self._after[schema]

  def missing(self, schema):
    """Vertices some walk reaches with no APPEND to `schema` applied."""
    if schema not in self._missing:
      self._missing[schema] = self._reached_without(schema)
    return self._missing[schema]

  def moves(self):
    """Per vertex, its distinct moves: (target, ends_config, the list it
    surely appends to -- None if none or its vertex has active_if)."""
    if self._moves is None:
      self._moves = []
      for u, v in enumerate(self.space.proto.vertices):
        specs = [_schema(parse_key(a.key))
                 if a.op == pb.Action.APPEND and not v.active_if else None
                 for a in v.actions]
        self._moves.append({(e.target, e.ends_config, specs[e.spec])
                            for e in self.space.edges[u]})
    return self._moves

  def _reached_without(self, schema):
    moves = self.moves()
    start = self.space.start
    seen = {start}
    stack = [start]
    while stack:
      u = stack.pop()
      for target, ends_config, makes in moves[u]:
        if makes == schema or ends_config or target in seen:
          continue  # after an ends_config edge nothing applies
        seen.add(target)
        stack.append(target)
    return seen


def _check_list_flow(space, uses: Sequence[Use]) -> None:
  """Errors for keys through a list that no walk can have appended to;
  warnings for those that some walks reach first."""
  p = space.proto
  flow = _ListFlow(space, uses)
  warned = set()
  for vi, spec, a, path in uses:
    if not space.reachable[vi]:
      continue
    for i, tok in enumerate(path):
      if not isinstance(tok, int):
        continue
      schema = _schema(path[:i])
      prefix = format_path(path[:i])
      if vi not in flow.after(schema):
        raise space._error(
            f"config key '{a.key}' uses the list '{prefix}', but no walk "
            f"appends to '{prefix}' before this vertex (add an APPEND "
            f"action with key '{prefix}' on the way here)",
            p.vertices[vi].name, a.name, vi, spec)
      if (vi in flow.missing(schema) and not p.vertices[vi].active_if and
          (vi, schema) not in warned):
        warned.add((vi, schema))
        # Frames: here, check_keys, SearchSpace._build, SearchSpace.__init__,
        # its caller.
        warnings.warn(
            f"{space.source}: vertex '{p.vertices[vi].name}', action "
            f"'{a.name}': some walks reach it before any APPEND to "
            f"'{prefix}' (they fail to decode: config key '{a.key}')",
            SpaceWarning, stacklevel=5)
