"""Runs graph_nas.launch under tfds.testing.mock_data (tests only).

  python tests/mock_launch.py NUM_EXAMPLES --space=... [launcher flags]

ImageNet cannot be generated cheaply on disk: the ImageNet launcher test
runs the real launcher on tfds' mock data (random JPEGs and labels with the
real splits), in-process, so the mock reaches every reader. (CIFAR-10
tests read generated data on disk: tests/generated_data.py.)
"""

import os
import sys
import tempfile

import tensorflow_datasets as tfds

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
from graph_nas.cli import launch  # noqa: E402  pylint: disable=wrong-import-position

if __name__ == "__main__":
  examples = int(sys.argv.pop(1))
  with tfds.testing.mock_data(num_examples=examples,
                              data_dir=tempfile.mkdtemp()):
    launch.run()
