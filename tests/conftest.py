import contextlib
import dataclasses
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
SHARED = ROOT.parent / "shared"
TFDS_DIR = SHARED / "data" / "tfds"
# Set to 1 to run every data-dependent test on tfds' mock data even where
# the prepared CIFAR-10 copy exists (a fresh machine's view).
MOCK_ENV = "GRAPH_NAS_TEST_MOCK_DATA"
MOCK_EXAMPLES = 256  # per split, under tfds.testing.mock_data

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def real_cifar_available() -> bool:
  return (os.environ.get(MOCK_ENV, "") in ("", "0") and
          (TFDS_DIR / "cifar10").is_dir())


@dataclasses.dataclass
class Cifar:
  """Where the tests' CIFAR-10 is: the real prepared copy or mock data."""
  data_dir: str
  real: bool

  def launch_command(self):
    """argv prefix of a launcher subprocess that reads this data."""
    if self.real:
      return [sys.executable, "-m", "graph_nas.launch"]
    return [sys.executable, str(ROOT / "tests" / "mock_launch.py"),
            str(MOCK_EXAMPLES)]


@contextlib.contextmanager
def cifar_data(tmp_dir):
  """The real CIFAR-10 when present, else tfds mock data (same splits and
  shapes, random pixels and labels)."""
  if real_cifar_available():
    yield Cifar(str(TFDS_DIR), True)
    return
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES,
                              data_dir=str(tmp_dir)):
    yield Cifar(str(tmp_dir), False)


@pytest.fixture
def cifar(tmp_path):
  with cifar_data(tmp_path / "tfds") as c:
    yield c


@pytest.fixture
def protos_dir():
  return PROTOS
