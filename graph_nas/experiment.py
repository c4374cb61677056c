"""`python -m graph_nas.experiment`: runs the toy-task experiment runner.

Its home is graph_nas.cli.experiment; `main` and `run` are imported here,
and any other of its names (`graph_nas.experiment.run_form`, ...) is
looked up there when asked for.
"""

from graph_nas.cli import experiment as _home
from graph_nas.cli.experiment import main, run

__all__ = ["main", "run"]


def __getattr__(name):  # pylint: disable=invalid-name
  if name.startswith("__") or not hasattr(_home, name):
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  return getattr(_home, name)


if __name__ == "__main__":
  run()
