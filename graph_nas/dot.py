"""`python -m graph_nas.dot` and graph-nas-dot: runs the command
(graph_nas.cli.dot); the drawing's names are graph_nas.report.dot's,
re-exported here."""
from graph_nas.report.dot import *  # noqa: F401,F403  pylint: disable=wildcard-import
from graph_nas.cli.dot import run  # noqa: F401

if __name__ == "__main__":
  run()
