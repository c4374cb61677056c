r"""Draw a search space as Graphviz DOT (and PNG when `dot` is installed),
optionally with the policy a search has learned on it.

  python -m graph_nas.dot --space=protos/select_optimizer_b4.textproto \
      --dot=b4.dot [--png=b4.png] [--linear]

  python -m graph_nas.dot --space=protos/select_optimizer_b4.textproto \
      --runs=runs/select_optimizer_b4 --png=policy.png [--dot=policy.dot]

Without --dot or --png the DOT text goes to stdout. With --runs, each edge
carries its probability under the run's controller and the best trial's
path is red (graph_nas.report.dot says how it is drawn).

This is the command of `graph-nas-dot` and `python -m graph_nas.dot` (its
flags, `main`, `run`); the drawing is graph_nas.report.dot's.
"""

import sys

from absl import flags

from graph_nas.cli import help as help_lib

FLAGS = flags.FLAGS

HELP_GROUPS = (
    help_lib.Group("input", ["space", "linear", "runs", "walks", "seed"]),
    help_lib.Group("drawing", ["expand_limit", "top_values", "rankdir"]),
    help_lib.Group("output", ["dot", "out", "png"]),
)


def _define_flags():
  """The command line flags (defined only when run as a program, so that
  the module imports beside other absl programs)."""
  flags.DEFINE_string("space", None, "Search space: a textproto file or "
                      "a shipped space's name.")
  flags.DEFINE_string("dot", None, "DOT output file (default: stdout unless "
                      "--png is given).")
  flags.DEFINE_string("out", None, "Same as --dot (older name).")
  flags.DEFINE_string("png", None, "Also render a PNG here (needs Graphviz "
                      "`dot`).")
  flags.DEFINE_boolean("linear", False, "Draw the space's derived linear "
                       "twin.")
  flags.DEFINE_string("runs", None, "A search output folder: draw the policy "
                      "of its checkpoint and its best trial's path.")
  flags.DEFINE_integer("walks", 512, "Walks sampled from the controller to "
                       "average its probabilities.", lower_bound=1)
  flags.DEFINE_integer("seed", 0, "Seed of the sampled walks.",
                       lower_bound=0)
  flags.DEFINE_integer("expand_limit", 6, "Draw an action's values as "
                       "parallel edges up to this many; above, as one "
                       "summarised edge.", lower_bound=1)
  flags.DEFINE_integer("top_values", 3, "Values listed on a summarised "
                       "edge.", lower_bound=1)
  flags.DEFINE_enum("rankdir", "TB", ["TB", "LR"], "Layout: top to bottom "
                    "or left to right.")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.space:
    sys.exit("error: --space is required, e.g. --space=select_optimizer_b4 "
             "(a shipped space) or --space=path/to/space.textproto")
  if FLAGS.dot and FLAGS.out and FLAGS.dot != FLAGS.out:
    sys.exit("error: give --dot or --out, not both")
  dot_path = FLAGS.dot or FLAGS.out
  from graph_nas import space as space_lib
  from graph_nas.errors import GraphNasError
  from graph_nas.report import dot
  try:
    space = space_lib.load(FLAGS.space)
    if FLAGS.linear:
      space = space.linear_twin()
    if FLAGS.runs:
      text = dot.run_policy_dot(space, FLAGS.runs, FLAGS.walks, FLAGS.seed,
                                FLAGS.expand_limit, FLAGS.top_values,
                                FLAGS.rankdir)
    else:
      text = dot.policy_dot(space, expand_limit=FLAGS.expand_limit,
                            rankdir=FLAGS.rankdir)
    if dot_path:
      with open(dot_path, "w", encoding="utf-8") as f:
        f.write(text)
    elif not FLAGS.png:
      sys.stdout.write(text)
    if FLAGS.png:
      dot.render_png(text, FLAGS.png)
  except GraphNasError as e:
    sys.exit(f"error: {e}")


def run():
  """Entry point of the command (graph-nas-dot, python -m graph_nas.dot):
  --help prints its flags and exits 0."""
  _define_flags()
  help_lib.run_command(main, HELP_GROUPS, __doc__, "graph_nas.dot",
                       "--space=SPACE [flags]")


if __name__ == "__main__":
  run()
