"""Tests of graph_nas.child.data: tfds splits, in memory and streamed."""

import os
import socket

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from graph_nas.child import data
from graph_nas.errors import GraphNasError
from tests.conftest import TFDS_DIR


def test_cifar10_roles_shapes_and_subsampling(cifar):
  info = data.dataset_info("cifar10")
  assert info.input_shape == (32, 32, 3) and info.num_classes == 10
  assert info.splits == {"train": "train[:45000]",
                         "validation": "train[45000:]", "test": "test"}
  assert data.is_in_memory("cifar10")
  assert not data.is_in_memory("imagenet2012")
  train = data.load_arrays("cifar10", "train", data_dir=cifar.data_dir,
                           train_examples=640)
  val = data.load_arrays("cifar10", "validation", data_dir=cifar.data_dir,
                         eval_examples=100)
  assert train.images.dtype == tf.uint8 and train.labels.dtype == tf.int32
  assert tuple(train.images.shape[1:]) == (32, 32, 3)
  assert len(val) == 100 and len(train) == 640
  # The generated copy is smaller than the real one: the package holds out
  # the same share (10 %) of its training split, the last examples.
  whole = data.load_arrays("cifar10", "train", data_dir=cifar.data_dir)
  held = data.load_arrays("cifar10", "validation", data_dir=cifar.data_dir)
  assert (len(whole), len(held)) == (1800, 200)
  np.testing.assert_array_equal(whole.images.numpy()[:640],
                                train.images.numpy())
  with pytest.raises(GraphNasError, match=r"train_examples=1801 .*1\.\.1800"):
    data.load_arrays("cifar10", "train", data_dir=cifar.data_dir,
                     train_examples=1801)
  with pytest.raises(GraphNasError, match="unknown split role"):
    data.load_arrays("cifar10", "holdout", data_dir=cifar.data_dir)


def test_the_real_cifar10_copy_has_the_original_splits(real_cifar):
  """../shared/data/tfds: 45,000 / 5,000 of the training split, and the
  original's balanced 10,000 test images."""
  kw = dict(data_dir=real_cifar.data_dir)
  assert len(data.load_arrays("cifar10", "validation", **kw)) == 5000
  labels = data.load_arrays("cifar10", "test", **kw).labels.numpy()
  assert np.bincount(labels).tolist() == [1000] * 10  # the original's
  with pytest.raises(GraphNasError, match="train_examples=45001"):
    data.load_arrays("cifar10", "train", train_examples=45001, **kw)


def test_image_size_resizes_cifar_once(cifar):
  info = data.dataset_info("cifar10", image_size=24)
  assert info.input_shape == (24, 24, 3)
  small = data.load_arrays("cifar10", "validation", data_dir=cifar.data_dir,
                           eval_examples=8, image_size=24)
  assert tuple(small.images.shape) == (8, 24, 24, 3)
  assert small.images.dtype == tf.uint8
  with pytest.raises(GraphNasError, match="too small"):
    data.dataset_info("cifar10", image_size=4)


def test_augmentation_is_stateless_and_pads_and_flips():
  images = tf.reshape(tf.range(2 * 8 * 8 * 3, dtype=tf.float32) + 1.0,
                      [2, 8, 8, 3])
  seed = tf.constant([3, 4], tf.int64)
  a = data.augment_batch(images, seed).numpy()
  b = data.augment_batch(images, seed).numpy()
  np.testing.assert_array_equal(a, b)  # same seed, same batch
  others = [data.augment_batch(images, tf.constant([s, 4], tf.int64))
            for s in range(8)]
  assert any((o.numpy() != a).any() for o in others)
  # Padding (zeros) appears in crops, every pixel comes from the image.
  shares = [float(np.mean(o.numpy() == 0)) for o in others]
  assert max(shares) > 0
  assert set(np.unique(a)) <= set(np.unique(images.numpy())) | {0.0}
  flipped = data.augment_batch(images, seed, crop=False).numpy()
  for i in range(2):
    assert ((flipped[i] == images[i].numpy()).all() or
            (flipped[i] == images[i].numpy()[:, ::-1]).all())


def test_data_dir_resolution(tmp_path, monkeypatch):
  monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
  monkeypatch.delenv(data.NO_SHARED_ENV, raising=False)
  assert data.resolve_data_dir(tmp_path) == (str(tmp_path), "flag")
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "env"))
  assert data.resolve_data_dir() == (str(tmp_path / "env"), "env")
  monkeypatch.delenv("TFDS_DATA_DIR")
  path, origin = data.resolve_data_dir()
  if TFDS_DIR.is_dir():
    assert (path, origin) == (str(TFDS_DIR.resolve()), "shared")
  else:
    assert origin == "tfds-default"
  monkeypatch.setenv(data.NO_SHARED_ENV, "1")
  path, origin = data.resolve_data_dir()
  assert origin == "tfds-default"
  assert path == os.path.expanduser(tfds.core.constants.DATA_DIR)


def test_imagenet_stream_under_mock_data(tmp_path):
  info = data.dataset_info("imagenet2012", image_size=48)
  assert info.input_shape == (48, 48, 3) and info.num_classes == 1000
  assert info.splits["validation"] == "train[-50000:]"
  assert info.splits["test"] == "validation"
  # Mock images are JPEGs of random sizes: crops are resized before batching.
  with tfds.testing.mock_data(num_examples=12, data_dir=str(tmp_path)):
    for role in data.ROLES:
      split = data.load_split("imagenet2012", role, 4, data_dir=tmp_path,
                              image_size=48, seed=1, eval_examples=6)
      assert isinstance(split, data.StreamSplit)
      training = role == "train"
      spec = split.dataset.element_spec[0].shape.as_list()
      assert spec == [4 if training else None, 48, 48, 3]
      batches = list(split.dataset.take(5))
      if not training:  # one pass of eval_examples, the last batch short
        assert [int(b[1].shape[0]) for b in batches] == [4, 2]
      else:
        assert len(batches) == 5  # endless
      for images, labels in batches:
        x = images.numpy()
        assert images.dtype == tf.float32 and labels.dtype == tf.int32
        assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 255
        assert x.std() > 1  # raw 0..255 pixels, not normalised
        assert ((labels.numpy() >= 0) & (labels.numpy() < 1000)).all()


def _no_network(monkeypatch):
  """Makes any download or socket connection fail the test."""
  def forbidden(*args, **kwargs):
    raise AssertionError("the network or a download was attempted")
  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                      forbidden)
  monkeypatch.setattr(socket.socket, "connect", forbidden)


def test_missing_cifar10_says_the_three_ways_to_get_it(tmp_path,
                                                       monkeypatch):
  _no_network(monkeypatch)
  empty = tmp_path / "no_data_here"
  empty.mkdir()
  with pytest.raises(GraphNasError) as err:
    data.load_arrays("cifar10", "train", data_dir=empty)
  message = str(err.value)
  assert str(empty) in message and "Three ways" in message
  assert "--download" in message and "TFDS_DATA_DIR" in message
  assert "download=True" in message  # the Python spelling too
  assert "../shared/data/tfds" in message
  # The TFDS_DATA_DIR environment variable is the default data dir.
  monkeypatch.setenv("TFDS_DATA_DIR", str(empty))
  with pytest.raises(GraphNasError, match="not prepared") as err:
    data.load_arrays("cifar10", "validation")
  assert str(empty) in str(err.value)


def test_a_missing_dataset_in_tfds_default_dir_is_downloaded(tmp_path,
                                                             monkeypatch):
  """No flag, no TFDS_DATA_DIR, no prepared copy: tfds downloads (here a
  refused download, as offline, ends in the message)."""
  calls = []

  def offline(self, *args, **kwargs):
    calls.append(self.name)
    raise ConnectionError("no network")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                      offline)
  monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
  monkeypatch.setenv(data.NO_SHARED_ENV, "1")
  monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path))
  with pytest.raises(GraphNasError, match="download failed") as err:
    data.load_arrays("cifar10", "test")
  assert calls == ["cifar10"]
  assert "Three ways" in str(err.value)


def test_missing_imagenet_points_at_the_manual_download(tmp_path,
                                                        monkeypatch):
  _no_network(monkeypatch)
  with pytest.raises(GraphNasError) as err:
    data.load_stream("imagenet2012", "train", 32, data_dir=tmp_path)
  message = str(err.value)
  assert f"{tmp_path}/downloads/manual" in message
  assert "ILSVRC2012_img_train.tar" in message
