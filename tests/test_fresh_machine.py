"""The suite on a machine that has never seen this repository.

Runs a selection of the suite again in a subprocess the way a user's clone
sees it: no prepared CIFAR-10 copy (the real-copy checks are hidden),
HOME an empty folder (nothing in ~/tensorflow_datasets), and no Graphviz or
Chromium on PATH. The data tests must pass on the generated data (the
searches that read it, in the launcher and in worker processes, run in
the main suite, which hides the prepared copy as well); the tests that need a system
tool must skip with one line naming the tool and its apt package; nothing
is downloaded.
"""

import os
import re
import shutil
import subprocess
import sys

from tests.conftest import FRESH_ENV, NO_SKIPS_ENV, ROOT

DATA_TESTS = ["tests/test_data.py"]
TOOL_TESTS = {  # test -> what its skip line must name
    "tests/test_space.py::test_dot_cli_renders_select_optimizer_b4":
        "apt-get install graphviz",
    "tests/test_report.py::test_report_renders_in_headless_chromium":
        "apt-get install chromium",
}
REAL_COPY_TESTS = {
    "tests/test_data.py::test_the_real_cifar10_copy_has_the_original_splits":
        "needs the prepared CIFAR-10",
}
HIDDEN_TOOLS = ("dot", "chromium")


def _path_without(tools, tmp_path):
  """A PATH that has every program of today's PATH except `tools`."""
  farm = tmp_path / "bin"
  farm.mkdir()
  for folder in os.environ.get("PATH", "").split(os.pathsep):
    if not os.path.isdir(folder):
      continue
    for name in os.listdir(folder):
      link = farm / name
      if name not in tools and not link.exists():
        link.symlink_to(os.path.join(folder, name))
  return str(farm)


def test_the_suite_passes_on_a_fresh_machine(tmp_path):
  home = tmp_path / "home"
  home.mkdir()
  env = {k: v for k, v in os.environ.items()
         if k not in (NO_SKIPS_ENV, "TFDS_DATA_DIR", "GRAPH_NAS_TEST_TFDS")}
  env.update(HOME=str(home), PATH=_path_without(HIDDEN_TOOLS, tmp_path),
             TF_CPP_MIN_LOG_LEVEL="2", RAY_AUTH_MODE="disabled",
             RAY_USAGE_STATS_ENABLED="0")
  env[FRESH_ENV] = "1"
  assert all(shutil.which(t, path=env["PATH"]) is None for t in HIDDEN_TOOLS)
  proc = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
       "-o", "addopts=", *DATA_TESTS, *TOOL_TESTS],
      capture_output=True, text=True, cwd=ROOT, env=env, timeout=400,  # below pytest.ini's 420 s per test
      check=False)
  tail = proc.stdout[-4000:] + proc.stderr[-2000:]
  assert proc.returncode == 0, tail
  summary = proc.stdout.strip().splitlines()[-1]
  passed = int(re.search(r"(\d+) passed", summary).group(1))
  skipped = int(re.search(r"(\d+) skipped", summary).group(1))
  assert passed >= 8 and "error" not in summary and "failed" not in summary
  expected = {**TOOL_TESTS, **REAL_COPY_TESTS}
  assert skipped == len(expected), summary
  skip_lines = [l for l in proc.stdout.splitlines() if l.startswith("SKIPPED")]
  for wording in expected.values():
    assert sum(wording in l for l in skip_lines) == 1, (wording, skip_lines)
  assert not (home / "tensorflow_datasets").exists()  # nothing downloaded
