"""`python -m graph_nas.experiment`: runs graph_nas.cli.experiment (its home)."""
from graph_nas.cli.experiment import *  # noqa: F401,F403  pylint: disable=wildcard-import
from graph_nas.cli.experiment import main, run  # noqa: F401

if __name__ == "__main__":
  run()
