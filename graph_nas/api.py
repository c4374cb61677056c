"""The Python front door: build a space in code, search it with your reward.

  from graph_nas import api

  b = api.SpaceBuilder("stack", start="stack", max_steps=30)
  b.default("num_layers", 0)
  b.vertex("stack").action("add", "stack", key="num_layers", op="ADD",
                           value=1).action("stop", "end")
  b.vertex("end")
  space = b.build()              # validated exactly as a textproto is
  text = b.to_textproto()        # space.loads(text) gives the same space

  def reward(config):            # config: the decoded walk, a dict
    return -abs(config["num_layers"] - 7)

  result = api.search(space, reward, "runs/stack", max_trials=100)
  result["best"]["config"], result["store"]

A space built here is a `graph_nas.protos.search_space_pb2.SearchSpace`
message validated by the same code (`graph_nas.space.SearchSpace`) that
validates a loaded textproto, so it fails where, and as, the textproto
would: a GraphNasError naming the vertex and action at fault.

A reward is a plain function `fn(config) -> float` (or
`fn(config, trial_id, seed)`); it may also return a dict with a "reward"
entry (the other entries are stored as the trial's metrics) or a
`graph_nas.search.results.EvalResult`. An object with an
`evaluate(config, trial_id, seed)` method returning an EvalResult is used
as it is. To run on the process or Ray
executor the function must be importable by the workers: define it at the
top level of a module, not as a lambda or inside a function.
"""

import importlib
import inspect
import numbers
import os
import pickle
import sys
from typing import Any, Dict, Optional, Sequence, Union

from google.protobuf import text_format

from graph_nas.search import settings as settings_lib
from graph_nas import space as space_lib
from graph_nas.errors import (GraphNasError, Naming, SettingError,
                              SettingsFault)
from graph_nas.protos import search_space_pb2 as pb
from graph_nas.search.evaluators import FunctionEvaluator

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
             ends_config: bool = False,
             description: str = "") -> "VertexBuilder":
    """Adds an action (an edge to `target`); returns this vertex.

    key: the config path it changes ("a", "layers[-1].kernel"); None: a pure
      transition. op: "SET", "APPEND" or "ADD".
    At most one value source: value (one scalar), values (a list of ints,
      floats or strings: one edge per value, named "name=value") or
      int_range=(start, stop[, step]) (stop included).
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
                            ("int_range", int_range)) if x is not None]
    if len(given) > 1:
      raise GraphNasError(f"give at most one of value, values, int_range "
                          f"(got {', '.join(given)})", **where)
    if value is not None:
      _set_value(a.value, value, "value", where)
    if values is not None:
      self._set_values(a, values, where)
    if int_range is not None:
      self._set_range(a, int_range, where)
    a.ends_config = bool(ends_config)
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

  def build(self, source: str = "<python>") -> space_lib.SearchSpace:
    """The validated space; the same checks as space.load of a textproto
    (errors name the vertex and action, without a line number)."""
    return space_lib.SearchSpace(self.to_proto(), source=source)

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


# ------------------------------------------------------------- evaluators
def as_evaluator(obj):
  """An evaluator object from a function, an evaluator instance or an
  evaluator class (instantiated without arguments)."""
  if inspect.isclass(obj):
    if not callable(getattr(obj, "evaluate", None)):
      raise GraphNasError(f"class {obj.__qualname__} has no evaluate() "
                          "method")
    obj = obj()
  if callable(getattr(obj, "evaluate", None)):
    return obj
  return FunctionEvaluator(obj)


def load_evaluator(spec: str):
  """The evaluator named by "module:function" (or module:Class /
  module:object with an evaluate method). The current directory is
  searched for the module too."""
  module_name, sep, attr = spec.partition(":")
  if not sep or not module_name or not attr:
    raise SettingError("evaluator", spec, "expected module:function, e.g. "
                       "my_rewards:reward")
  if os.getcwd() not in sys.path and "" not in sys.path:
    sys.path.append(os.getcwd())
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise SettingError("evaluator", spec, f"cannot import module "
                       f"{module_name!r}: {e}") from None
  except Exception as e:  # pylint: disable=broad-except
    raise SettingError("evaluator", spec, f"importing {module_name!r} "
                       f"raised {type(e).__name__}: {e}") from None
  obj = module
  for part in attr.split("."):
    if not hasattr(obj, part):
      raise SettingError("evaluator", spec, f"module {module_name!r} has "
                         f"no {attr!r}")
    obj = getattr(obj, part)
  try:
    return as_evaluator(obj)
  except GraphNasError as e:
    raise SettingError("evaluator", spec, str(e)) from None


def evaluator_name(obj) -> str:
  """module:qualname of a function or of an evaluator's class (part of a
  run's identity: a folder is resumed with the same evaluator only)."""
  target = obj if inspect.isfunction(obj) or inspect.isclass(obj) else \
      type(obj)
  if isinstance(obj, FunctionEvaluator):
    return evaluator_name(obj.fn)
  return (f"{getattr(target, '__module__', '?')}:"
          f"{getattr(target, '__qualname__', type(target).__name__)}")


def _check_picklable(evaluator, executor: str) -> None:
  try:
    pickle.dumps(evaluator)
  except Exception as e:  # pylint: disable=broad-except
    raise SettingError(
        "evaluate", evaluator_name(evaluator),
        f"executor={executor!r} sends the evaluator to other processes, "
        f"but it does not pickle ({type(e).__name__}: {e}): define the "
        "reward function at the top level of a module (not a lambda or a "
        "nested function), or use executor='inprocess'") from None


# search()'s keyword arguments are the settings' own names (graph_nas.
# settings); the budget entry "evaluator" is its `evaluate` argument.
API_NAMES = Naming({"evaluator": "evaluate"})


# ---------------------------------------------------------------- search
def search(space, evaluate, out_dir: str, *,
           executor_kwargs: Optional[Dict[str, Any]] = None,
           **settings) -> Dict[str, Any]:
  """Runs (or, on the same out_dir, resumes) a search; returns its best.

  space: a SearchSpace, a SpaceBuilder, or a textproto path / shipped name.
  evaluate: a reward function or an evaluator (see the module docstring).
  executor_kwargs: the Ray settings (address, cpus_per_child,
    gpus_per_child, retries) as one dict; they may also be given directly.
  settings: any of the settings below, by name (keyword-only). Each is
    declared once in graph_nas.search.settings, with the default every front door
    (the launcher's flags included) uses.

{settings}

  Returns {"best": {trial_id, reward, walk, config, metrics, space},
  "store": path of trials.sqlite, "out_dir", "timing", "table"}. The
  folder also holds top_trials.md, rewards.png, best_architecture.json and
  tensorboard/, as after a launcher run.

  Errors that name a setting name it as the keyword argument above
  (evaluate=..., max_consecutive_failures=10).
  """
  try:
    return _search(space, evaluate, out_dir, dict(executor_kwargs or {},
                                                  **settings))
  except SettingsFault as e:
    e.named(API_NAMES)
    raise


search.__doc__ = search.__doc__.replace("{settings}",
                                        settings_lib.describe(indent=2))


def _as_space(space):
  if isinstance(space, SpaceBuilder):
    return space.build()
  if isinstance(space, (str, os.PathLike)):
    return space_lib.load(os.fspath(space))
  if not isinstance(space, space_lib.SearchSpace):
    raise GraphNasError(f"space must be a SearchSpace, a SpaceBuilder or a "
                        f"textproto path, got {type(space).__name__}")
  return space


def _search(space, evaluate, out_dir, overrides):
  from graph_nas.search import assemble
  from graph_nas import search as search_lib
  space = _as_space(space)
  evaluator = as_evaluator(evaluate)
  chosen = settings_lib.split_overrides(overrides)
  executor = chosen[settings_lib.ExecutorSettings]
  if executor.executor != "inprocess":
    _check_picklable(evaluator, executor.executor)
  job = assemble.assemble(
      space, evaluator, out_dir, search=chosen[settings_lib.SearchSettings],
      algorithm=chosen[settings_lib.AlgorithmSettings], executor=executor,
      budget={"evaluator": evaluator_name(evaluate)},
      record={"evaluator": repr(evaluator), "api": True})
  done = assemble.run_search(job)
  result = done["result"]
  return {"best": result["best"],
          "store": os.path.join(out_dir, search_lib.DB_NAME),
          "out_dir": out_dir, "timing": done["timing"],
          "table": result["table"]}
