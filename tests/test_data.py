"""Tests of graph_nas.data: tfds pipelines for cifar10 and imagenet2012."""

import socket

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from graph_nas import data
from graph_nas.errors import GraphNasError
from tests.conftest import TFDS_DIR


def test_cifar10_roles_shapes_and_normalisation():
  info = data.dataset_info("cifar10")
  assert info.input_shape == (32, 32, 3) and info.num_classes == 10
  assert info.splits == {"train": "train[:45000]",
                         "validation": "train[45000:]", "test": "test"}
  train = data.load_dataset("cifar10", "train", 64, data_dir=TFDS_DIR,
                            train_examples=640)
  images, labels = train.element_spec
  assert images.shape == (64, 32, 32, 3) and images.dtype == tf.float32
  assert labels.shape == (64,) and labels.dtype == tf.int32
  assert data.num_batches(train) == 10  # one epoch, fixed batch shape
  # The same arguments give the same (cached) pipeline.
  assert data.load_dataset("cifar10", "train", 64, data_dir=TFDS_DIR,
                           train_examples=640) is train
  val = data.load_dataset("cifar10", "validation", 64, data_dir=TFDS_DIR,
                          eval_examples=1000)
  assert val.element_spec[0].shape.as_list() == [None, 32, 32, 3]
  seen = np.concatenate([y.numpy() for _, y in val])
  assert len(seen) == 1000  # evaluation keeps the last, short batch
  assert set(seen) <= set(range(10)) and len(set(seen)) == 10
  x = np.concatenate([x.numpy() for x, _ in val])
  # Per-channel normalisation: about zero mean and unit deviation.
  assert np.all(np.abs(x.mean(axis=(0, 1, 2))) < 0.15)
  assert np.all(np.abs(x.std(axis=(0, 1, 2)) - 1) < 0.15)


def test_cifar10_train_batches_are_augmented_and_reshuffled():
  plain = data.load_dataset("cifar10", "train", 64, data_dir=TFDS_DIR,
                            train_examples=128, augment=False)
  augmented = data.load_dataset("cifar10", "train", 64, data_dir=TFDS_DIR,
                                train_examples=128)
  first = [y.numpy() for _, y in plain]
  second = [y.numpy() for _, y in plain]
  assert sorted(np.concatenate(first)) == sorted(np.concatenate(second))
  assert any((a != b).any() for a, b in zip(first, second))  # reshuffled
  # Pad-4 + crop: about an eighth of the augmented pixels are padding.
  info = data.dataset_info("cifar10")
  pad_value = -np.array(info.mean) / np.array(info.std)

  def padding_share(ds):
    x = np.concatenate([x.numpy() for x, _ in ds])
    return np.isclose(x, pad_value, atol=1e-4).all(axis=-1).mean()

  assert padding_share(augmented) > 0.05
  assert padding_share(plain) < 0.01


def test_pipelines_are_cached_bounded_and_seeded():
  def load(role, seed, **kwargs):
    return data.load_dataset("cifar10", role, 50, data_dir=TFDS_DIR,
                             seed=seed, **kwargs)

  # Evaluation batches do not depend on the seed: one shared pipeline.
  assert load("validation", 1, eval_examples=100) is load(
      "validation", 2, eval_examples=100)
  first = load("train", 1, train_examples=100)
  assert first is not load("train", 2, train_examples=100)
  labels = [y.numpy() for _, y in first]
  for seed in range(data.MAX_CACHED_DATASETS + 3):
    load("train", 100 + seed, train_examples=100)
  cached = data._DATASETS  # pylint: disable=protected-access
  assert len(cached) <= data.MAX_CACHED_DATASETS
  # A pipeline built again with the same seed gives the same batches.
  data.clear_cache()
  again = load("train", 1, train_examples=100)
  assert again is not first
  for a, b in zip(labels, [y.numpy() for _, y in again]):
    np.testing.assert_array_equal(a, b)


def test_test_split_and_subsampling_bounds():
  test = data.load_dataset("cifar10", "test", 100, data_dir=TFDS_DIR,
                           eval_examples=250)
  assert sum(int(tf.shape(y)[0]) for _, y in test) == 250
  with pytest.raises(GraphNasError, match="train_examples"):
    data.load_dataset("cifar10", "train", 64, data_dir=TFDS_DIR,
                      train_examples=45001)
  with pytest.raises(GraphNasError, match="no full batch"):
    data.load_dataset("cifar10", "train", 64, data_dir=TFDS_DIR,
                      train_examples=10)
  with pytest.raises(GraphNasError, match="unknown dataset 'mnist'"):
    data.load_dataset("mnist", "train", 8)
  with pytest.raises(GraphNasError, match="split role"):
    data.load_dataset("cifar10", "eval", 8, data_dir=TFDS_DIR)
  with pytest.raises(GraphNasError, match="32x32"):
    data.dataset_info("cifar10", image_size=64)


def test_imagenet_pipeline_under_mock_data(tmp_path):
  info = data.dataset_info("imagenet2012", image_size=48)
  assert info.input_shape == (48, 48, 3) and info.num_classes == 1000
  assert info.splits["validation"] == "train[-50000:]"
  assert info.splits["test"] == "validation"
  # Mock images are JPEGs of random sizes: crops are resized before batching.
  with tfds.testing.mock_data(num_examples=12, data_dir=str(tmp_path)):
    for role in data.ROLES:
      ds = data.load_dataset("imagenet2012", role, 4, data_dir=tmp_path,
                             image_size=48, seed=1)
      fixed = role == "train"
      assert ds.element_spec[0].shape.as_list() == [4 if fixed else None,
                                                    48, 48, 3]
      for images, labels in ds.take(2):
        assert images.shape == (4, 48, 48, 3)
        assert images.dtype == tf.float32 and labels.dtype == tf.int32
        x = images.numpy()
        assert np.isfinite(x).all()
        # Normalised: pixel 0..255 maps into about [-2.2, 2.7].
        assert x.min() >= -2.2 and x.max() <= 2.7
        assert x.std() > 0.05
        assert ((labels.numpy() >= 0) & (labels.numpy() < 1000)).all()


def _no_network(monkeypatch):
  """Makes any download or socket connection fail the test."""
  def forbidden(*args, **kwargs):
    raise AssertionError("the network or a download was attempted")
  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                      forbidden)
  monkeypatch.setattr(socket.socket, "connect", forbidden)


def test_missing_cifar10_says_how_to_get_it(tmp_path, monkeypatch):
  _no_network(monkeypatch)
  empty = tmp_path / "no_data_here"
  empty.mkdir()
  with pytest.raises(GraphNasError) as err:
    data.load_dataset("cifar10", "train", 32, data_dir=empty)
  message = str(err.value)
  assert str(empty) in message
  assert f"tfds build cifar10 --data_dir={empty}" in message
  assert "download=True" in message
  # The TFDS_DATA_DIR environment variable is the default data dir.
  monkeypatch.setenv("TFDS_DATA_DIR", str(empty))
  with pytest.raises(GraphNasError, match="not prepared") as err:
    data.load_dataset("cifar10", "validation", 32)
  assert str(empty) in str(err.value)


def test_missing_imagenet_points_at_the_manual_download(tmp_path,
                                                        monkeypatch):
  _no_network(monkeypatch)
  with pytest.raises(GraphNasError) as err:
    data.load_dataset("imagenet2012", "train", 32, data_dir=tmp_path)
  message = str(err.value)
  assert f"{tmp_path}/downloads/manual" in message
  assert "ILSVRC2012_img_train.tar" in message
