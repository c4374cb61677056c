"""A generated, learnable CIFAR-10 prepared in tfds' own format (tests only).

The tests read CIFAR-10 through the package's real loading path (a tfds
data dir), so every process that reads it, a launcher subprocess, a process
pool or a Ray worker alike, finds it on disk: nothing is patched in one
process only, nothing is downloaded, and no ../shared copy is needed.

The data can be learned: each class has its own colour (a fixed palette)
and every image is that colour plus Gaussian noise, so a child that learns
anything beats chance (0.1) by far, and one that does not stays near it.
The training split is smaller than the real one (`TRAIN` examples), so the
package holds out the same share of it (10 %) as of the real 50,000.
"""

import os
from unittest import mock

import numpy as np

TRAIN = 2000  # -> 1,800 training and 200 validation examples
TEST = 500
NOISE = 40.0  # pixel noise (0..255 scale) around the class colour


def palette(seed=0):
  """[10, 3] class colours, far enough apart to be told apart in noise."""
  return np.random.default_rng(seed).integers(30, 226, size=(10, 3))


def _examples(n, seed, colours):
  rng = np.random.default_rng(seed)
  for i in range(n):
    label = int(rng.integers(10))
    image = colours[label] + rng.normal(0.0, NOISE, (32, 32, 3))
    key = f"{seed}_{i}"
    yield key, {"id": key, "label": label,
                "image": np.clip(image, 0, 255).astype(np.uint8)}


def write_cifar10(data_dir, *, train=TRAIN, test=TEST, seed=0):
  """Prepares the generated CIFAR-10 in `data_dir` (once); returns it.

  The real tfds cifar10 builder writes it, with its own features and
  metadata, from generated examples instead of the downloaded archive.
  """
  import tensorflow_datasets as tfds
  data_dir = os.fspath(data_dir)
  builder = tfds.builder("cifar10", data_dir=data_dir)
  if builder.is_prepared():
    return data_dir
  colours = palette(seed)

  def split_generators(self, dl_manager):
    del self, dl_manager
    return {"train": _examples(train, seed + 1, colours),
            "test": _examples(test, seed + 2, colours)}

  with mock.patch.object(type(builder), "_split_generators",
                         split_generators):
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            try_download_gcs=False))
  return data_dir
