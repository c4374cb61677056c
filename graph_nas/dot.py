"""Export a search space as Graphviz DOT (and PNG when `dot` is installed).

  python -m graph_nas.dot --space=protos/select_optimizer_b4.textproto \
      --out=b4.dot [--png=b4.png] [--linear]
"""

import shutil
import subprocess
import sys

from absl import app, flags

from graph_nas import space as space_lib
from graph_nas.errors import GraphNasError

FLAGS = flags.DEFINE_string("space", None, "Search space textproto file.")
_OUT = flags.DEFINE_string("out", None, "DOT output file (default: stdout).")
_PNG = flags.DEFINE_string("png", None,
                           "Also render a PNG here (needs Graphviz `dot`).")
_LINEAR = flags.DEFINE_boolean("linear", False,
                               "Export the space's derived linear twin.")


def render_png(dot_text: str, png_path: str) -> None:
  """Renders DOT text to PNG with the Graphviz `dot` program."""
  exe = shutil.which("dot")
  if exe is None:
    raise GraphNasError("the Graphviz `dot` program is not installed "
                        "(e.g. `apt-get install graphviz`); DOT text can "
                        "still be written with --out")
  proc = subprocess.run([exe, "-Tpng", "-o", png_path], input=dot_text,
                        text=True, capture_output=True, check=False)
  if proc.returncode != 0:
    raise GraphNasError(f"dot failed: {proc.stderr.strip()}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.value:
    raise app.UsageError("--space is required")
  try:
    space = space_lib.load(FLAGS.value)
    if _LINEAR.value:
      space = space.linear_twin()
    text = space.to_dot()
    if _OUT.value:
      with open(_OUT.value, "w", encoding="utf-8") as f:
        f.write(text)
    elif not _PNG.value:
      sys.stdout.write(text)
    if _PNG.value:
      render_png(text, _PNG.value)
  except GraphNasError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
