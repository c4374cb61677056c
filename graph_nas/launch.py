"""`python -m graph_nas.launch`: runs graph_nas.cli.launch (its home)."""
from graph_nas.cli.launch import *  # noqa: F401,F403  pylint: disable=wildcard-import
from graph_nas.cli.launch import main, run  # noqa: F401

if __name__ == "__main__":
  run()
