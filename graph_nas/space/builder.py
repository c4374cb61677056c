"""Build a search space in Python: `SpaceBuilder` and `VertexBuilder`.

A space built here is a `graph_nas.protos.search_space_pb2.SearchSpace`
message validated by the same code that validates a loaded textproto
(graph_nas.space.SearchSpace), so it fails where, and as, the textproto
would; `to_textproto()` / `write()` give the textproto. Re-exported as
`graph_nas.api.SpaceBuilder`.
"""

import numbers
from typing import Any, Dict, Optional, Sequence, Union

from google.protobuf import text_format

from graph_nas.errors import GraphNasError
from graph_nas.protos import search_space_pb2 as pb
from graph_nas.space.graph import SearchSpace

_OPS = {name: number for name, number in pb.Action.Op.items()}
TEXTPROTO_HEADER = ("# proto-file: protos/search_space.proto\n"
                    "# proto-message: graph_nas.SearchSpace\n")


def _set_value(msg: pb.Value, x, what: str, where: dict) -> None:
  """Fills a Value message from a Python scalar (bool, int, float, str)."""
  if isinstance(x, bool):
    msg.bool_value = x
  elif isinstance(x, numbers.Integral):
    if not -2**63 <= int(x) < 2**63:
      raise GraphNasError(f"{what} {x} does not fit in 64 bits", **where)
    msg.int_value = int(x)
  elif isinstance(x, numbers.Real):
    msg.float_value = float(x)
  elif isinstance(x, str):
    try:
      msg.string_value = x
    except (TypeError, ValueError) as e:
      raise GraphNasError(f"{what} {x!r} is not a valid string: {e}",
                          **where) from None
  else:
    raise GraphNasError(f"{what} {x!r} is a {type(x).__name__}; give a "
                        "bool, int, float or str", **where)


class VertexBuilder:
  """One vertex of a SpaceBuilder; `action` adds its outgoing edges."""

  def __init__(self, builder: "SpaceBuilder", proto: pb.Vertex):
    self._builder = builder
    self.proto = proto

  @property
  def name(self) -> str:
    return self.proto.name

  def action(self, name: str, target: str, key: Optional[str] = None,
             op: Union[str, int] = "SET", value: Any = None,
             values: Optional[Sequence[Any]] = None,
             int_range: Optional[Sequence[int]] = None,
             float_range: Optional[Sequence[Any]] = None,
             ends_config: bool = False, max_taken: int = 0,
             description: str = "") -> "VertexBuilder":
    """Adds an action (an edge to `target`); returns this vertex.

    key: the config path it changes ("a", "layers[-1].kernel"); None: a pure
      transition. op: "SET", "APPEND" or "ADD".
    At most one value source: value (one scalar), values (a list of ints,
      floats or strings: one edge per value, named "name=value") or
      int_range=(start, stop[, step]) (stop included) or
      float_range=(low, high, num[, log]): num floats from low to high,
      evenly spaced, or geometrically with log=True (e.g.
      float_range=(1e-5, 1e-1, 16, True) for a learning rate).
    max_taken: how many times a walk may take this action (0: no limit);
      max_taken=3 on a "continue" edge gives 1 to 4 turns of a loop.
    """
    where = {"vertex": self.proto.name, "action": name}
    a = self.proto.actions.add()
    try:
      a.name = name
      a.target = target
      a.key = key or ""
      a.description = description
    except (TypeError, ValueError) as e:
      raise GraphNasError(f"bad name, target, key or description: {e}",
                          **where) from None
    if isinstance(op, str) and op.upper() in _OPS:
      a.op = _OPS[op.upper()]
    elif isinstance(op, int) and not isinstance(op, bool) and \
        op in _OPS.values():
      a.op = op
    else:
      raise GraphNasError(f"op {op!r} is not one of {', '.join(_OPS)}",
                          **where)
    given = [n for n, x in (("value", value), ("values", values),
                            ("int_range", int_range),
                            ("float_range", float_range)) if x is not None]
    if len(given) > 1:
      raise GraphNasError(f"give at most one of value, values, int_range, "
                          f"float_range (got {', '.join(given)})", **where)
    if value is not None:
      _set_value(a.value, value, "value", where)
    if values is not None:
      self._set_values(a, values, where)
    if int_range is not None:
      self._set_range(a, int_range, where)
    if float_range is not None:
      self._set_float_range(a, float_range, where)
    a.ends_config = bool(ends_config)
    if isinstance(max_taken, bool) or not isinstance(max_taken,
                                                     numbers.Integral):
      raise GraphNasError(f"max_taken must be an int, got {max_taken!r}",
                          **where)
    try:
      a.max_taken = max_taken
    except ValueError as e:
      raise GraphNasError(f"max_taken {max_taken!r}: {e}", **where) from None
    return self

  @staticmethod
  def _set_values(a: pb.Action, values, where) -> None:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
      raise GraphNasError(f"values must be a list, got {values!r}", **where)
    values = list(values)
    if not values:
      raise GraphNasError("values is empty", **where)
    if all(isinstance(x, str) for x in values):
      field = a.string_values
    elif any(isinstance(x, bool) for x in values):
      raise GraphNasError("values cannot hold bools (a proto has no list "
                          "of bools): use two actions with value=True / "
                          "value=False", **where)
    elif all(isinstance(x, numbers.Integral) for x in values):
      field = a.int_values
    elif all(isinstance(x, numbers.Real) for x in values):
      field = a.float_values
      values = [float(x) for x in values]
    else:
      raise GraphNasError(f"values {values!r} mix types: give only ints, "
                          "only numbers, or only strings", **where)
    try:
      field.extend(values)
    except (TypeError, ValueError) as e:
      raise GraphNasError(f"values {values!r}: {e}", **where) from None

  @staticmethod
  def _set_range(a: pb.Action, int_range, where) -> None:
    try:
      parts = list(int_range)
    except TypeError:
      parts = None
    if (parts is None or len(parts) not in (2, 3) or
        not all(isinstance(x, numbers.Integral) and not isinstance(x, bool)
                for x in parts)):
      raise GraphNasError(f"int_range must be (start, stop) or (start, "
                          f"stop, step) of ints, got {int_range!r}", **where)
    try:
      a.int_range.start = parts[0]
      a.int_range.stop = parts[1]
      if len(parts) == 3:
        a.int_range.step = parts[2]
    except ValueError as e:
      raise GraphNasError(f"int_range {int_range!r}: {e}", **where) from None

  @staticmethod
  def _set_float_range(a: pb.Action, float_range, where) -> None:
    try:
      parts = list(float_range)
    except TypeError:
      parts = None
    if (parts is None or len(parts) not in (3, 4) or
        not all(isinstance(x, numbers.Real) and not isinstance(x, bool)
                for x in parts[:2]) or
        not isinstance(parts[2], numbers.Integral) or
        isinstance(parts[2], bool) or
        (len(parts) == 4 and not isinstance(parts[3], bool))):
      raise GraphNasError(f"float_range must be (low, high, num) or (low, "
                          f"high, num, log) with num an int and log a bool, "
                          f"got {float_range!r}", **where)
    try:
      a.float_range.low = float(parts[0])
      a.float_range.high = float(parts[1])
      a.float_range.num = int(parts[2])
      a.float_range.log = bool(parts[3]) if len(parts) == 4 else False
    except ValueError as e:
      raise GraphNasError(f"float_range {float_range!r}: {e}",
                          **where) from None

  def when(self, key: str, equals: Any) -> "VertexBuilder":
    """The decision here changes the config only when config[key] ==
    equals (a Condition of active_if; several must all hold)."""
    c = self.proto.active_if.add(key=key)
    _set_value(c.equals, equals, "condition value",
               {"vertex": self.proto.name})
    return self


class SpaceBuilder:
  """Builds a search space (the SearchSpace proto) in Python."""

  def __init__(self, name: str, start: str, max_steps: Optional[int] = None,
               description: str = "", *, task: str = "",
               task_params: Optional[Dict[str, Any]] = None,
               linear_unroll: Optional[int] = None):
    self.proto = pb.SearchSpace()
    try:
      self.proto.name = name
      self.proto.start = start
      self.proto.description = description
      self.proto.task = task
      self.proto.max_steps = int(max_steps or 0)
      self.proto.linear_unroll = int(linear_unroll or 0)
      for k, v in (task_params or {}).items():
        self.proto.task_params[str(k)] = str(v)
    except (TypeError, ValueError) as e:
      raise GraphNasError(f"space {name!r}: {e}") from None

  def default(self, key: str, value: Any) -> "SpaceBuilder":
    """config[key] = value before the walk's first action."""
    d = self.proto.defaults.add(key=key)
    _set_value(d.value, value, f"default {key!r}", {})
    return self

  def vertex(self, name: str, description: str = "") -> VertexBuilder:
    """Adds a vertex (a decision; terminal while it has no action)."""
    v = self.proto.vertices.add()
    try:
      v.name = name
      v.description = description
    except (TypeError, ValueError) as e:
      raise GraphNasError(f"bad name or description: {e}",
                          vertex=repr(name)) from None
    return VertexBuilder(self, v)

  def to_proto(self) -> pb.SearchSpace:
    out = pb.SearchSpace()
    out.CopyFrom(self.proto)
    return out

  def build(self, source: str = "<python>") -> SearchSpace:
    """The validated space; the same checks as space.load of a textproto
    (errors name the vertex and action, without a line number)."""
    return SearchSpace(self.to_proto(), source=source)

  def to_textproto(self, validate: bool = True) -> str:
    """The space as textproto text (space.loads reads it back to an equal
    space); validated first unless validate=False."""
    if validate:
      self.build()
    return TEXTPROTO_HEADER + text_format.MessageToString(self.proto)

  def write(self, path: str) -> str:
    """Writes to_textproto() to path; returns path."""
    text = self.to_textproto()
    with open(path, "w", encoding="utf-8") as f:
      f.write(text)
    return path
