"""`python -m graph_nas.report`: runs the command (graph_nas.cli.report)."""
from graph_nas.cli.report import run

run()
