r"""Summarise and plot search output folders (running or finished).

  python -m graph_nas.report --runs=runs/cifar_graph,runs/cifar_linear \
      --plot=runs/graph_vs_linear.png
  python -m graph_nas.report --runs=runs/cifar --html
  graph-nas-report --runs=/archive/cifar --html --out_dir=reports/cifar

Reads each folder's SQLite trial store. Prints a summary and the top trials
(image children as MnasNet block strings, e.g. r2_k3_s22_e6_i16_o24_se0.25).
--plot draws, like the paper's Figs. 6 and 7, the moving average (left) and
the best-so-far (right) reward against trials, one line per folder.

Into each folder (or, for one folder, into --out_dir: a read-only or
archived run folder is reported elsewhere) it writes pareto.png for a run
whose trials have a cost (validation accuracy against multiply-adds, the
non-dominated front joined, the MnasNet target as a vertical line when the
run set --target_flops), and with --html report.html: one self-contained
page (images embedded) with the top table, the reward and Pareto plots,
the learned policy drawn on the space's graph, and the run's settings
(graph_nas.report.html).

This is the command of `graph-nas-report` and `python -m graph_nas.report`
(its flags, `main`, `run`); the work is the library's: graph_nas.report.trials
reads and tabulates trials, graph_nas.report.plots draws, graph_nas.report.html
writes the page.
"""

import errno
import os
import sys

from absl import flags

from graph_nas.cli import help as help_lib
from graph_nas.errors import GraphNasError

FLAGS = flags.FLAGS

HELP_GROUPS = (
    help_lib.Group("runs", ["runs", "top"]),
    help_lib.Group("plots", ["plot", "window", "pareto"]),
    help_lib.Group("HTML page", ["html", "space", "walks"]),
    help_lib.Group("output", ["out_dir"]),
)


def _define_flags():
  """The command line flags (defined only when run as a program, so that
  the module imports beside other absl programs)."""
  flags.DEFINE_list("runs", None, "Search output folders (comma-separated).")
  flags.DEFINE_string("plot", None, "Write the reward plot of all --runs "
                      "here (PNG).")
  flags.DEFINE_integer("top", 10, "Rows of the top-trials table.",
                       lower_bound=1)
  flags.DEFINE_integer("window", 20, "Moving-average window.",
                       lower_bound=1)
  flags.DEFINE_boolean("pareto", True, "Write pareto.png into each folder "
                       "whose trials have a cost (or into --out_dir).")
  flags.DEFINE_boolean("html", False, "Write report.html into each folder "
                       "(or into --out_dir); self-contained.")
  flags.DEFINE_string("space", None, "With --html: the space file the run "
                      "searched, for the policy graph (default: the --space "
                      "it was launched with).")
  flags.DEFINE_integer("walks", 512, "With --html: walks sampled to average "
                       "the controller's probabilities.", lower_bound=1)
  flags.DEFINE_string("out_dir", None, "With one --runs folder: write "
                      "pareto.png and report.html here (made when missing) "
                      "instead of into the run folder, e.g. one that is "
                      "read-only.")


def _output_folder(runs):
  """--out_dir, made when missing (None when not given); exits with one
  line when it cannot be."""
  out_dir = FLAGS.out_dir
  if not out_dir:
    return None
  if len(runs) > 1:
    sys.exit("error: --out_dir applies to one folder: give one --runs")
  in_the_way = help_lib.file_in_the_way(out_dir)
  if in_the_way:
    sys.exit(f"error: --out_dir={out_dir}: {in_the_way}")
  if FLAGS.pareto or FLAGS.html:
    os.makedirs(out_dir, exist_ok=True)
  return out_dir


def _write_reports(run_dir, trials, out_dir):
  """pareto.png (--pareto) and report.html (--html) of one folder, into
  out_dir or the folder itself."""
  from graph_nas.report import html as html_report, plots
  from graph_nas.search.run_folder import PARETO_NAME
  into = out_dir or run_dir
  if FLAGS.pareto:
    # None (and a log line saying why) for a run without costs.
    path = plots.write_pareto(run_dir, os.path.join(into, PARETO_NAME),
                              trials=trials)
    if path:
      print(f"wrote {path}")
  if FLAGS.html:
    path = html_report.write_html(
        run_dir, os.path.join(into, html_report.HTML_NAME),
        space_path=FLAGS.space, top=FLAGS.top, walks=FLAGS.walks,
        window=FLAGS.window)
    print(f"wrote {path}")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.runs:
    sys.exit("error: --runs is required, e.g. --runs=runs/cifar (search "
             "output folders, comma-separated)")
  if FLAGS.space and len(FLAGS.runs) > 1:
    sys.exit("error: --space applies to one folder: give one --runs")
  out_dir = _output_folder(FLAGS.runs)
  from graph_nas.report import plots, trials as trials_lib
  try:
    runs = trials_lib.load_runs(FLAGS.runs)
    for d, trials in runs.items():
      print(f"== {d}: {trials_lib.summary(trials)}")
      print(trials_lib.trials_markdown(trials, FLAGS.top,
                                       trials_lib.load_screened(d)))
      _write_reports(d, trials, out_dir)
    if FLAGS.plot:
      plots.plot_runs(FLAGS.runs, FLAGS.plot, FLAGS.window)
      print(f"wrote {FLAGS.plot}")
  except GraphNasError as e:
    sys.exit(f"error: {e}")
  except OSError as e:
    if e.filename is None:
      raise
    hint = ""
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and not out_dir:
      hint = " (a read-only run folder? write the reports elsewhere with "
      hint += "--out_dir)"
    sys.exit(f"error: {e.filename}: {e.strerror}{hint}")


def run():
  """Entry point of the command (graph-nas-report, python -m
  graph_nas.report): --help prints its flags and exits 0."""
  _define_flags()
  help_lib.run_command(main, HELP_GROUPS, __doc__, "graph_nas.report",
                       "--runs=FOLDER[,FOLDER...] [flags]")


if __name__ == "__main__":
  run()
