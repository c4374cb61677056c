"""The data-dependent tests on a machine without the prepared CIFAR-10.

A user's clone has no ../shared beside it. This runs the tests that read
CIFAR-10 again in a subprocess with the prepared copy hidden: the search
for ../shared switched off (GRAPH_NAS_NO_SHARED_DATA), TFDS_DATA_DIR an
empty folder, and the tests' data on tfds.testing.mock_data. They must all
run and pass; none may be skipped.
"""

import os
import re
import subprocess
import sys

from tests.conftest import MOCK_ENV, ROOT

DATA_TESTS = [
    "tests/test_data.py",
    "tests/test_child_trainer.py::test_child_learns_and_reports_its_metrics",
    "tests/test_child_trainer.py::test_the_saved_best_child_stands_alone",
    "tests/test_launch_cifar.py::test_tiny_cifar_search_end_to_end",
    "tests/test_launch_cifar.py::test_missing_dataset_is_one_clear_line",
]


def test_data_dependent_tests_pass_without_the_prepared_copy(tmp_path):
  empty = tmp_path / "empty_tfds"
  empty.mkdir()
  env = dict(os.environ, TFDS_DATA_DIR=str(empty),
             GRAPH_NAS_NO_SHARED_DATA="1", TF_CPP_MIN_LOG_LEVEL="2")
  env[MOCK_ENV] = "1"
  proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs",
                         "-p", "no:cacheprovider", *DATA_TESTS],
                        capture_output=True, text=True, cwd=ROOT, env=env,
                        timeout=1200, check=False)
  tail = proc.stdout[-3000:] + proc.stderr[-2000:]
  assert proc.returncode == 0, tail
  summary = proc.stdout.strip().splitlines()[-1]
  passed = int(re.search(r"(\d+) passed", summary).group(1))
  assert passed >= 12, summary
  assert "skipped" not in summary and "error" not in summary, summary
  assert not any(empty.iterdir())  # nothing was downloaded
