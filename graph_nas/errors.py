"""The package's exception types, and a warning category.

GraphNasError is the base of them all. SetupError (a fault of the search's
setup) is the one kind that stops a search when an evaluator raises it.
SettingsFault errors name settings: by their Python names in the library,
by a front end's names (the launcher's flags) once it re-words them with
SettingsFault.named.
"""


class GraphNasError(Exception):
    """Any user-facing error of graph-nas (bad space file, bad setting, ...).

    The message names where the fault is: the file, the line when known, and
    the vertex / action / setting at fault.
    """

    def __init__(self, message, *, source=None, line=None, vertex=None,
                 action=None):
        self.reason = message
        self.source = source
        self.line = line
        self.vertex = vertex
        self.action = action
        where = ""
        if source:
            where = str(source)
            if line:
                where += f":{line}"
            where += ": "
        what = ""
        if vertex is not None:
            what += f"vertex '{vertex}'"
            if action is not None:
                what += f", action '{action}'"
            what += ": "
        super().__init__(f"{where}{what}{message}")


class RunFolderConflict(GraphNasError):
    """An output folder whose files do not agree (a checkpoint without the
    trials it learned from, a checkpoint or results of another run, a
    damaged checkpoint): refused before anything in it is touched
    (graph_nas.search.run_folder.check_folder)."""


class SpaceWarning(UserWarning):
    """A search space that loads but is probably not what was meant."""


class SetupError(GraphNasError):
    """A fault of the search's setup, not of one trial (a missing dataset,
    bad training settings): raised from an evaluator, it stops the search.

    Any other exception an evaluator raises (a GraphNasError included, e.g.
    a child config the builder refuses) fails only its own trial.
    """


class Naming:
    """How a message names a setting and shows its value.

    The library speaks Python: a setting is named as the SearchSettings
    field or keyword argument it is (``max_trials=10``,
    ``update_policy='fast'``). A front end words the same error its own way
    by passing another Naming to :meth:`SettingsFault.named` -- the launcher
    names flags (``--max_trials=10``), graph_nas.api its keyword arguments.

    names: setting -> the front end's name; a setting not in it keeps its
    Python name. quote_strings: show a string value as a Python literal.
    """

    def __init__(self, names=None, quote_strings=True):
        self.names = dict(names or {})
        self.quote_strings = quote_strings

    def name(self, setting: str) -> str:
        return self.names.get(setting, setting)

    def value(self, value) -> str:
        if value is None:
            return "(unset)"
        if isinstance(value, str) and self.quote_strings:
            return repr(value)
        return str(value)


PYTHON_NAMES = Naming()


class SettingsFault(GraphNasError):
    """An error whose message names settings. ``str(e)`` names them as
    ``e.naming`` says (Python names unless a front end set its own with
    :meth:`named`); subclasses word the message in :meth:`describe`."""

    naming = PYTHON_NAMES

    def __init__(self):
        super().__init__(self.describe(PYTHON_NAMES))

    def describe(self, naming: Naming) -> str:
        raise NotImplementedError

    def named(self, naming: Naming) -> "SettingsFault":
        """This error, its message naming settings as `naming` says."""
        self.naming = naming
        self.args = (self.describe(naming),)
        self.reason = self.args[0]
        return self

    def __str__(self):
        return self.describe(self.naming)

    def __reduce__(self):  # rebuilt from its fields, not its message
        return _rebuild, (type(self), self.__dict__)


def _rebuild(cls, fields):
    error = cls.__new__(cls)
    error.__dict__.update(fields)
    error.args = (str(error),)
    return error


class SettingError(SettingsFault, SetupError):
    """A setting with a value it cannot take (``workers=0``, an unknown
    update policy, an evaluator that does not import): a fault of the
    setup, so raised from an evaluator it stops the search too."""

    def __init__(self, setting: str, value, problem: str):
        self.setting, self.value, self.problem = setting, value, problem
        super().__init__()

    def describe(self, naming: Naming) -> str:
        return (f"{naming.name(self.setting)}={naming.value(self.value)}: "
                f"{self.problem}")


class IdentityMismatch(SettingsFault, SetupError):
    """An output folder holds a search with another value of one setting
    of the run's identity, so it cannot be resumed with this one.

    budget: the setting is an entry of the evaluator's budget (what gives
    rewards their meaning: data, training length, ...), not one of the
    search's own settings. note: what the stored value is, when it is not
    the setting's value itself (a space's fingerprint).
    """

    def __init__(self, out_dir: str, setting: str, stored, given, *,
                 budget: bool = False, note: str = ""):
        self.out_dir, self.setting = out_dir, setting
        self.stored, self.given = stored, given
        self.budget, self.note = budget, note
        super().__init__()

    def describe(self, naming: Naming) -> str:
        name, show = naming.name(self.setting), naming.value
        note = f" ({self.note})" if self.note else ""
        if self.budget:
            return (f"{self.out_dir} holds a search trained with {name}="
                    f"{show(self.stored)}, not {show(self.given)}{note}: "
                    f"rerun with {name}={show(self.stored)} to resume it, "
                    f"or use another {naming.name('out_dir')}")
        return (f"{self.out_dir} holds a search with {name}="
                f"{show(self.stored)}, not {show(self.given)}{note}: use "
                f"another {naming.name('out_dir')} or the same settings to "
                "resume")
