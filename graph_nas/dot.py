"""`python -m graph_nas.dot` and graph-nas-dot: run the command.

The command is graph_nas.cli.dot (its `run` is imported here); the
drawing's names (`graph_nas.dot.policy_dot`, `render`, ...) are
graph_nas.report.dot's, looked up there when asked for.
"""

import importlib

from graph_nas.cli.dot import run

__all__ = ["run"]


def __getattr__(name):  # pylint: disable=invalid-name
  drawing = importlib.import_module("graph_nas.report.dot")
  if name.startswith("__") or not hasattr(drawing, name):
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  return getattr(drawing, name)


if __name__ == "__main__":
  run()
