"""python -m graph_nas.report (graph_nas.report.tables)."""
from graph_nas.report.tables import run

run()
