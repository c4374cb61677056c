"""`python -m graph_nas.dot` and graph-nas-dot: runs graph_nas.report.dot
(its home)."""
from graph_nas.report.dot import *  # noqa: F401,F403  pylint: disable=wildcard-import
from graph_nas.report.dot import run  # noqa: F401

if __name__ == "__main__":
  run()
