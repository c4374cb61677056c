"""Summarise and plot search output folders (running or finished).

  python -m graph_nas.report --runs=runs/cifar_graph,runs/cifar_linear \
      --plot=runs/graph_vs_linear.png
  python -m graph_nas.report --runs=runs/cifar --html

Reads each folder's SQLite trial store. Prints a summary and the top trials
(image children as MnasNet block strings, e.g. r2_k3_s22_e6_i16_o24_se0.25).
--plot draws, like the paper's Figs. 6 and 7, the moving average (left) and
the best-so-far (right) reward against trials, one line per folder.

Into each folder it writes pareto.png for a run whose trials have a cost
(validation accuracy against multiply-adds, the non-dominated front joined,
the MnasNet target as a vertical line when the run set --target_flops), and
with --html report.html: one self-contained page (images embedded) with the
top table, the reward and Pareto plots, the learned policy drawn on the
space's graph, and the run's settings (graph_nas.report.html).

This module is the command and what a finished search writes
(:func:`write_run_reports`); it is the one that ``graph_nas.report`` lends
its names from, so it re-exports the trials' and the plots' names
(``graph_nas.report.load_runs``, ``graph_nas.report.pareto_figure``, ...).
The work is theirs: reading and tabulating trials in
graph_nas.report.trials, the figures in graph_nas.report.plots. Imports go
one way: this module imports html, html imports trials and plots.
"""

import os
import sys
from typing import Dict

# logging: lent as graph_nas.report.logging too (tests patch it there).
from absl import app, flags, logging  # noqa: F401

from graph_nas.errors import GraphNasError
from graph_nas.report import html as html_report
# Re-exported: the names graph_nas.report lends (see the module doc).
from graph_nas.report.plots import (  # noqa: F401
    _pyplot, cost_points, curves, pareto_figure, pareto_front, plot_runs,
    png_bytes, reward_figure, target_flops_of, write_pareto)
from graph_nas.report.trials import (  # noqa: F401
    COLUMNS, architecture_text, best_first, block_strings, load_runs,
    run_meta, summary, table_rows, top_table)
from graph_nas.search.run_folder import REWARDS_NAME, TOP_NAME


def write_run_reports(out_dir: str, top: int = 10) -> Dict:
  """What a finished search writes: top_trials.md, rewards.png and, for a
  run with costs, pareto.png. Returns the table and the paths written."""
  trials = load_runs([out_dir])[out_dir]
  table = top_table(best_first(trials)[:top])
  top_path = os.path.join(out_dir, TOP_NAME)
  with open(top_path, "w", encoding="utf-8") as f:
    f.write(table + "\n")
  rewards = os.path.join(out_dir, REWARDS_NAME)
  plot_runs([out_dir], rewards)
  pareto = write_pareto(out_dir, trials=trials)
  return {"table": table, "top_trials": top_path, "rewards": rewards,
          "pareto": pareto}


def _define_flags():
  """The command line flags (defined only when run as a program, so that
  the module imports beside other absl programs)."""
  flags.DEFINE_list("runs", None, "Search output folders.")
  flags.DEFINE_string("plot", None, "Write the reward plot here (PNG).")
  flags.DEFINE_integer("top", 10, "Rows of the top-trials table.",
                       lower_bound=1)
  flags.DEFINE_integer("window", 20, "Moving-average window.",
                       lower_bound=1)
  flags.DEFINE_boolean("pareto", True, "Write pareto.png into each folder "
                       "whose trials have a cost.")
  flags.DEFINE_boolean("html", False, "Write report.html into each folder "
                       "(self-contained).")
  flags.DEFINE_string("space", None, "With --html: the space file the run "
                      "searched, for the policy graph (default: the --space "
                      "it was launched with).")
  flags.DEFINE_integer("walks", 512, "With --html: walks sampled to average "
                       "the controller's probabilities.", lower_bound=1)


FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.runs:
    raise app.UsageError("--runs is required")
  if FLAGS.space and len(FLAGS.runs) > 1:
    raise app.UsageError("--space applies to one folder: give one --runs")
  try:
    runs = load_runs(FLAGS.runs)
    for d, trials in runs.items():
      print(f"== {d}: {summary(trials)}")
      print(top_table(best_first(trials)[:FLAGS.top]))
      if FLAGS.pareto:
        path = write_pareto(d, trials=trials)  # logs why when it does not
        if path:
          print(f"wrote {path}")
      if FLAGS.html:
        path = html_report.write_html(d, space_path=FLAGS.space,
                                      top=FLAGS.top, walks=FLAGS.walks,
                                      window=FLAGS.window)
        print(f"wrote {path}")
    if FLAGS.plot:
      plot_runs(FLAGS.runs, FLAGS.plot, FLAGS.window)
      print(f"wrote {FLAGS.plot}")
  except GraphNasError as e:
    sys.exit(f"error: {e}")


def run():
  """Entry point of the command."""
  _define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
