"""The package's one exception type, and a warning category."""


class GraphNasError(Exception):
    """Any user-facing error of graph-nas (bad space file, bad flag, ...).

    The message names where the fault is: the file, the line when known, and
    the vertex / action / flag at fault.
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


class SpaceWarning(UserWarning):
    """A search space that loads but is probably not what was meant."""


class SetupError(GraphNasError):
    """A fault of the search's setup, not of one trial (a missing dataset,
    bad training settings): raised from an evaluator, it stops the search.

    Any other exception an evaluator raises (a GraphNasError included, e.g.
    a child config the builder refuses) fails only its own trial.
    """
