"""Shared test set-up: the suite plays a machine that has never seen the
repository, whatever machine it runs on.

- Data: every data-dependent test reads a generated, learnable CIFAR-10
  prepared on disk in tfds' format (tests/generated_data.py), in every
  process that reads it (launcher subprocesses, process pools, Ray
  workers). The prepared copy at ../shared/data/tfds is hidden from the
  package (GRAPH_NAS_NO_SHARED_DATA) and TFDS_DATA_DIR points at the
  generated data, so nothing reads ~/tensorflow_datasets or the network.
  The few checks of the real copy itself use the `real_cifar` fixture.
- System tools (Graphviz, Chromium): `require_tool` skips a test with one
  line naming the tool and its apt package.
- With GRAPH_NAS_NO_SKIPS=1 (what .ci/run sets) a skipped test fails.
"""

import contextlib
import dataclasses
import os
import pathlib
import shutil
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
SHARED = ROOT.parent / "shared"
TFDS_DIR = SHARED / "data" / "tfds"
NO_SKIPS_ENV = "GRAPH_NAS_NO_SKIPS"
# Set to 1 to hide the real copy from the tests too (tests/test_fresh_machine).
FRESH_ENV = "GRAPH_NAS_TEST_FRESH_MACHINE"
# The generated CIFAR-10 of this test session (one folder per session, set
# before any test starts so every subprocess inherits it).
GENERATED_ENV = "GRAPH_NAS_TEST_TFDS"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["GRAPH_NAS_NO_SHARED_DATA"] = "1"
_OWN_DATA_DIR = None
if not os.environ.get(GENERATED_ENV):
  _OWN_DATA_DIR = tempfile.mkdtemp(prefix="graph_nas_tfds_")
  os.environ[GENERATED_ENV] = _OWN_DATA_DIR
elif os.environ.get("PYTEST_XDIST_WORKER"):
  # A worker of a parallel run (pytest.ini): its own copy, inside the
  # session's folder, so that two workers never prepare one at once.
  os.environ[GENERATED_ENV] = os.path.join(
      os.environ[GENERATED_ENV], os.environ["PYTEST_XDIST_WORKER"])
  os.makedirs(os.environ[GENERATED_ENV], exist_ok=True)
os.environ["TFDS_DATA_DIR"] = os.environ[GENERATED_ENV]


def require_tool(tool, apt_package):
  """Skips the calling test when `tool` is not on PATH (one line: the tool
  and the apt package that brings it)."""
  if shutil.which(tool) is None:
    pytest.skip(f"needs `{tool}` on PATH (apt-get install {apt_package})")


def generated_data_dir():
  """The session's generated CIFAR-10 (prepared on first use)."""
  from tests import generated_data
  return generated_data.write_cifar10(os.environ[GENERATED_ENV])


@dataclasses.dataclass
class Cifar:
  """Where a test's CIFAR-10 is: generated data, or the real copy."""
  data_dir: str
  real: bool

  def launch_command(self):
    """argv prefix of a launcher subprocess."""
    return [sys.executable, "-m", "graph_nas.launch"]


@contextlib.contextmanager
def cifar_data(tmp_dir=None):
  """The generated CIFAR-10 (`tmp_dir` is ignored: one copy per session)."""
  del tmp_dir
  yield Cifar(generated_data_dir(), False)


@pytest.fixture
def cifar():
  """The generated, learnable CIFAR-10 (see tests/generated_data.py)."""
  return Cifar(generated_data_dir(), False)


@pytest.fixture
def real_cifar():
  """The real prepared CIFAR-10 at ../shared/data/tfds (CI has it)."""
  if (os.environ.get(FRESH_ENV, "") not in ("", "0") or
      not (TFDS_DIR / "cifar10").is_dir()):
    pytest.skip(f"needs the prepared CIFAR-10 at {TFDS_DIR} "
                "(see ../shared/README.md)")
  return Cifar(str(TFDS_DIR), True)


@pytest.fixture
def protos_dir():
  return PROTOS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
  """Where skips are forbidden (CI), a skipped test is a failure."""
  del item, call
  outcome = yield
  report = outcome.get_result()
  if (report.skipped and not hasattr(report, "wasxfail") and
      os.environ.get(NO_SKIPS_ENV, "") not in ("", "0")):
    reason = report.longrepr[-1] if isinstance(report.longrepr,
                                               tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = (f"skipped, but {NO_SKIPS_ENV}=1 forbids skips: "
                       f"{reason}")


def pytest_unconfigure(config):
  del config
  if _OWN_DATA_DIR:
    shutil.rmtree(_OWN_DATA_DIR, ignore_errors=True)
