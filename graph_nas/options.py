"""How a setting is declared once, for every front door.

A settings class is a frozen dataclass whose fields are declared with
`setting(default, help, ...)`: the default, the help text, the bounds or
choices, the front ends' flag name where it is not the field's own, and
whether the setting is part of a run's identity (a folder holding a search
resumes only with the same value). Everything else derives from the
declarations:

- absl flags with the same defaults, bounds and help (`define_flags`,
  `from_flags`, `given_flags`) for the launcher and the experiment runner;
- `graph_nas.api.search`'s keyword arguments (`split_overrides`);
- the wording of errors that name a setting (`flag_naming`) and the bounds
  checks (`check_bounds`, run by every class's `check()`);
- a run's recorded settings (`as_record`) and identity (`identity_fields`);
- the documentation lines of the API (`describe`).

The classes live with what they configure: the search's, the algorithm's
and the executor's in `graph_nas.search.settings`, a child's training and
the best child's retraining in `graph_nas.child.settings`. This module is
at the bottom of the house (it imports only `graph_nas.errors`), and
imports neither TensorFlow nor absl at import time.
"""

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

from graph_nas.errors import Naming, SettingError

_OPTION = "graph_nas.option"


@dataclasses.dataclass(frozen=True)
class Option:
  """What a setting's declaration says besides its default.

  Attributes:
    help: one sentence or two, shown by --help and in the API docs.
    kind: int, float, str or bool (the default's type when it is not None).
    lower, upper: bounds of a number (None: unbounded); inclusive unless
      lower_open / upper_open.
    choices: the values a string may take (None among them: "unset",
      shown to the command line as `none_flag`).
    flag: the front ends' name when it is not the field's own. Two settings
      may share one flag (MnasNet's reward_alpha and reward_beta are both
      --flops_exponent): the flag sets both.
    only: (setting, values): the setting has an effect only when that other
      setting takes one of these values (e.g. queue_size only with
      algorithm pqt).
    flagged: False for a setting the command line does not offer (it is
      set by a front end itself, e.g. the experiment's durability).
    identity: part of the run's identity: a folder holding a search resumes
      only with the same value (graph_nas.search.loop).
    none_flag: the flag's word for None in `choices` ("none").
    group: the heading of the front ends' --help it is listed under when
      not its class's (e.g. "early stopping").
  """
  help: str
  kind: type = float
  lower: Optional[float] = None
  upper: Optional[float] = None
  choices: Optional[Tuple[Any, ...]] = None
  flag: Optional[str] = None
  only: Optional[Tuple[str, Tuple[Any, ...]]] = None
  flagged: bool = True
  identity: bool = False
  lower_open: bool = False
  upper_open: bool = False
  none_flag: str = "none"
  group: Optional[str] = None

  def problem(self, value) -> Optional[str]:
    """Why `value` is outside this declaration (None: it is inside; None
    is always inside: "unset")."""
    if value is None:
      return None
    if self.choices is not None:
      if value not in self.choices:
        return "must be " + alternatives([c for c in self.choices
                                          if c is not None]) + (
                                              " or None" if None in
                                              self.choices else "")
      return None
    if self.kind in (int, float):
      if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must be a number"
      if self.kind is float and not math.isfinite(value):
        return "must be a finite number"
      if self.lower is not None:
        if self.lower_open and not value > self.lower:
          return f"must be > {self.lower:g}"
        if not value >= self.lower:
          return f"must be >= {self.lower:g}"
      if self.upper is not None:
        if self.upper_open and not value < self.upper:
          return f"must be < {self.upper:g}"
        if not value <= self.upper:
          return f"must be <= {self.upper:g}"
    return None


def setting(default, help_text, *, kind=None, default_factory=None,
            **option):
  """A dataclass field declaring one setting (see Option for `option`)."""
  kind = kind or type(default if default_factory is None else
                      default_factory())
  meta = {_OPTION: Option(help=help_text, kind=kind, **option)}
  if default_factory is not None:
    return dataclasses.field(default_factory=default_factory, metadata=meta)
  return dataclasses.field(default=default, metadata=meta)


def options(cls) -> Dict[str, Option]:
  """name -> Option of every declared setting of a settings class."""
  return {f.name: f.metadata[_OPTION] for f in dataclasses.fields(cls)
          if _OPTION in f.metadata}


def _default(f):
  if f.default_factory is not dataclasses.MISSING:
    return f.default_factory()
  return f.default


def defaults(cls) -> Dict[str, Any]:
  return {f.name: _default(f) for f in dataclasses.fields(cls)
          if _OPTION in f.metadata}


def identity_fields(cls) -> Tuple[str, ...]:
  """The settings of `cls` that are part of a run's identity."""
  return tuple(n for n, o in options(cls).items() if o.identity)


def check_bounds(obj) -> None:
  """Raises SettingError naming the first field of `obj` outside its
  declared bounds or choices (None passes: "unset")."""
  for name, opt in options(type(obj)).items():
    value = getattr(obj, name)
    why = opt.problem(value)
    if why:
      raise SettingError(name, value, why)


def load_named(spec: str, name: str, example: str = "my_module:my_function"):
  """The object a "module:attribute" setting names (the current directory
  is searched for the module too); a SettingError naming the setting
  `name` when it cannot be had."""
  import importlib  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from graph_nas.errors import SettingError  # pylint: disable=import-outside-toplevel
  module_name, sep, attr = spec.partition(":")
  if not sep or not module_name or not attr:
    raise SettingError(name, spec, f"expected module:function, e.g. "
                       f"{example}")
  if os.getcwd() not in sys.path and "" not in sys.path:
    sys.path.append(os.getcwd())
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise SettingError(name, spec, f"cannot import module "
                       f"{module_name!r}: {e}") from None
  except Exception as e:  # pylint: disable=broad-except
    raise SettingError(name, spec, f"importing {module_name!r} raised "
                       f"{type(e).__name__}: {e}") from None
  obj = module
  for part in attr.split("."):
    if not hasattr(obj, part):
      raise SettingError(name, spec, f"module {module_name!r} has no "
                         f"{attr!r}")
    obj = getattr(obj, part)
  return obj


def alternatives(values) -> str:
  """"'a' or 'b'", "'a', 'b' or 'c'"."""
  shown = [repr(v) for v in values]
  return shown[0] if len(shown) == 1 else (", ".join(shown[:-1]) + " or " +
                                          shown[-1])


class Settings:
  """Shared behaviour of the settings classes (frozen dataclasses whose
  fields are declared with `setting`)."""

  # The error's words for a name that is not a setting of the class
  # (default: "not a setting of <class>").
  unknown_wording = ""

  def replace(self, **changes):
    """A copy with `changes`; an unknown name is a SettingError."""
    known = options(type(self))
    for name in changes:
      if name not in known:
        what = (self.unknown_wording or
                f"not a setting of {type(self).__name__}")
        raise SettingError(name, changes[name], f"{what} (known: "
                           f"{', '.join(sorted(known))})")
    return dataclasses.replace(self, **changes)

  def check(self):
    """Raises SettingError naming the first bad field; returns self."""
    check_bounds(self)
    return self


def flag_name(cls, name: str) -> str:
  opt = options(cls)[name]
  return opt.flag or name


def flag_naming(*classes, extra=None, quote_strings=False) -> Naming:
  """A Naming that names each setting of `classes` as its flag
  (--max_trials, --ray_address), plus `extra` (setting -> flag name)."""
  names = {}
  for cls in classes:
    for name in options(cls):
      names[name] = "--" + flag_name(cls, name)
  names.update({k: "--" + v for k, v in (extra or {}).items()})
  return Naming(names, quote_strings=quote_strings)


def split_overrides(overrides: Dict[str, Any], classes):
  """{class: settings object} from keyword `overrides` (setting name ->
  value), each class's declared defaults elsewhere. An unknown name is a
  SettingError listing the known ones."""
  known = {name: cls for cls in classes for name in options(cls)}
  per_class = {cls: {} for cls in classes}
  for name, value in overrides.items():
    if name not in known:
      raise SettingError(name, value, "unknown setting (known: " +
                         ", ".join(sorted(known)) + ")")
    per_class[known[name]][name] = value
  return {cls: cls(**values).check() for cls, values in per_class.items()}


def as_record(*objects) -> Dict[str, Any]:
  """The settings of `objects` as one JSON-able dict (a run's record)."""
  out = {}
  for obj in objects:
    out.update(dataclasses.asdict(obj))
  return out


def describe(classes, indent=0) -> str:
  """The declared settings as documentation lines: name=default: help."""
  pad = " " * indent
  lines = []
  for cls in classes:
    lines.append(f"{pad}{cls.__name__}:")
    for f in dataclasses.fields(cls):
      opt = f.metadata.get(_OPTION)
      if opt is not None:
        lines.append(f"{pad}  {f.name}={_default(f)!r}: {opt.help}")
  return "\n".join(lines)


# --------------------------------------------------------------- flags
def flags_of(cls, leave=(), group=None):
  """The flag names of the declared, flagged settings of `cls` (not the
  settings in `leave`) under the help heading `group` (None: the class's
  own), in declaration order, each once."""
  out = []
  for name, opt in options(cls).items():
    flag = opt.flag or name
    if opt.flagged and name not in leave and flag not in out and \
        opt.group == group:
      out.append(flag)
  return out


def define_flags(cls, flag_values=None, *, names=None, defaults_=None,
                 help_=None):
  """Defines one absl flag per declared, flagged setting of `cls` (or only
  `names`), with the declaration's default, bounds, choices and help.

  defaults_ / help_: a front end's own default or help for some settings
  (setting name -> value), e.g. the experiment's "the paper's for the task".
  """
  from absl import flags
  fv = flag_values if flag_values is not None else flags.FLAGS
  defaults_, help_ = dict(defaults_ or {}), dict(help_ or {})
  done = set()
  for f in dataclasses.fields(cls):
    opt = f.metadata.get(_OPTION)
    if opt is None or not opt.flagged or (names and f.name not in names):
      continue
    name = opt.flag or f.name
    if name in done:  # a flag shared by two settings
      continue
    done.add(name)
    default = defaults_.get(f.name, _default(f))
    text = help_.get(f.name, opt.help)
    if opt.choices is not None:
      words = [opt.none_flag if c is None else c for c in opt.choices]
      flags.DEFINE_enum(name, opt.none_flag if default is None else default,
                        words, text, flag_values=fv)
    elif opt.kind is bool:
      flags.DEFINE_boolean(name, default, text, flag_values=fv)
    elif opt.kind is int:
      flags.DEFINE_integer(name, default, text, lower_bound=opt.lower,
                           upper_bound=opt.upper, flag_values=fv)
    elif opt.kind is float:
      flags.DEFINE_float(name, default, text, lower_bound=opt.lower,
                         upper_bound=opt.upper, flag_values=fv)
    else:
      flags.DEFINE_string(name, default, text, flag_values=fv)
    if opt.lower_open or opt.upper_open:
      flags.register_validator(
          name, lambda value, opt=opt: opt.problem(value) is None,
          message=opt.problem(opt.lower if opt.lower_open else opt.upper),
          flag_values=fv)


def _flag_value(fv, flag, opt):
  value = fv[flag].value
  if opt.choices is not None and None in opt.choices and \
      value == opt.none_flag:
    return None
  return value


def flag_values_of(cls, flag_values=None) -> Dict[str, Any]:
  """setting name -> its flag's parsed value, for the declared, flagged
  settings of `cls` that have a flag defined."""
  from absl import flags
  fv = flag_values if flag_values is not None else flags.FLAGS
  values = {}
  for name, opt in options(cls).items():
    flag = opt.flag or name
    if opt.flagged and flag in fv:
      values[name] = _flag_value(fv, flag, opt)
  return values


def from_flags(cls, flag_values=None, **overrides):
  """The settings object of `cls` from the parsed flags (the settings the
  command line does not offer keep their defaults, or `overrides`)."""
  values = flag_values_of(cls, flag_values)
  values.update(overrides)
  return cls(**values).check()


def given_flags(cls, flag_values=None):
  """[(setting name, flag name, Option)] of the settings of `cls` given on
  the command line."""
  from absl import flags
  fv = flag_values if flag_values is not None else flags.FLAGS
  out = []
  for name, opt in options(cls).items():
    flag = opt.flag or name
    if opt.flagged and flag in fv and fv[flag].present:
      out.append((name, flag, opt))
  return out
