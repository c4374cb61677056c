import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
SHARED = ROOT.parent / "shared"
TFDS_DIR = SHARED / "data" / "tfds"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def protos_dir():
  return PROTOS
