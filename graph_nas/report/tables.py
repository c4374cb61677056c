"""What a finished search writes (:func:`write_run_reports`), and the names
``graph_nas.report`` lends.

``graph_nas.report`` lends its names from this module, so it re-exports
the trials' and the plots' names (``graph_nas.report.load_runs``,
``graph_nas.report.pareto_figure``, ...). The work is theirs: reading and
tabulating trials in graph_nas.report.trials, the figures in
graph_nas.report.plots.

The command (`graph-nas-report`, `python -m graph_nas.report`) is
graph_nas.cli.report; :func:`run` here is its entry point's old address
(``graph_nas.report:run``), kept for installed scripts.
"""

import os
from typing import Dict

# logging: lent as graph_nas.report.logging too (tests patch it there).
from absl import logging  # noqa: F401

# Re-exported: the names graph_nas.report lends (see the module doc).
from graph_nas.report.plots import (  # noqa: F401
    _pyplot, cost_points, curves, pareto_figure, pareto_front, plot_runs,
    png_bytes, reward_figure, target_flops_of, write_pareto)
from graph_nas.report.trials import (  # noqa: F401
    COLUMNS, architecture_text, best_first, block_strings, load_runs,
    run_meta, summary, table_rows, top_table, trials_markdown, load_screened)
from graph_nas.search.run_folder import REWARDS_NAME, TOP_NAME


def write_run_reports(out_dir: str, top: int = 10) -> Dict:
  """What a finished search writes: top_trials.md, rewards.png and, for a
  run with costs, pareto.png. Returns the table and the paths written."""
  trials = load_runs([out_dir])[out_dir]
  table = trials_markdown(trials, top, load_screened(out_dir))
  top_path = os.path.join(out_dir, TOP_NAME)
  with open(top_path, "w", encoding="utf-8") as f:
    f.write(table + "\n")
  rewards = os.path.join(out_dir, REWARDS_NAME)
  plot_runs([out_dir], rewards)
  pareto = write_pareto(out_dir, trials=trials)
  return {"table": table, "top_trials": top_path, "rewards": rewards,
          "pareto": pareto}


def run():
  """Entry point of graph-nas-report: the command, graph_nas.cli.report."""
  from graph_nas.cli import report as command  # the command is above us
  command.run()
