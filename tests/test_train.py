"""Tests of graph_nas.train: training and scoring children, failures."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from graph_nas import train
from graph_nas.errors import GraphNasError
from tests.conftest import ROOT, TFDS_DIR

# A budget that beats chance reliably (val accuracy about 0.35 with the small
# model below): 2000 training images, 3 epochs of 31 steps.
SMALL = train.TrainSettings(data_dir=str(TFDS_DIR), train_examples=2000,
                            eval_examples=1000, batch_size=64, epochs=3)


def small_cnn(config, input_shape=(32, 32, 3), num_classes=10, *,
              softmax=False):
  """A stand-in for graph_nas.child.build_child: conv-BN-ReLU-pool blocks."""
  width = config.get("width", 16)
  inputs = keras.Input(input_shape)
  x = inputs
  for i in range(config.get("blocks", 3)):
    x = keras.layers.Conv2D(width * 2**i, 3, padding="same",
                            use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  if config.get("nan"):
    x = keras.layers.Lambda(lambda t: t * float("nan"))(x)
  outputs = keras.layers.Dense(num_classes,
                               activation="softmax" if softmax else None)(x)
  return keras.Model(inputs, outputs)


class _OutOfMemory(keras.layers.Layer):
  """Raises what TensorFlow raises when a tensor cannot be allocated."""

  def call(self, x, training=False):
    if training:
      raise tf.errors.ResourceExhaustedError(
          None, None, "OOM when allocating tensor with shape[1000000,4096]")
    return x


def oom_cnn(config, input_shape, num_classes):
  inputs = keras.Input(input_shape)
  x = _OutOfMemory()(inputs)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def test_child_beats_chance_on_cifar10_with_mnas_reward():
  result = train.train_child(small_cnn, {}, SMALL,
                             flops_fn=lambda model: 2e6, target_flops=4e6)
  assert result.ok, result.details
  m = result.metrics
  assert m["val_examples"] == 1000
  assert m["val_accuracy"] > 0.2  # chance is 0.1
  # MnasNet reward: under the target, (flops / target)^-0.07 rewards it.
  assert result.reward == pytest.approx(m["val_accuracy"] * 0.5**-0.07)
  assert m["flops"] == 2e6 and m["params"] > 10000
  assert m["steps"] == 3 * (2000 // 64) and m["replicas"] == 1
  for key in ("train_loss", "train_accuracy", "val_loss", "build_s",
              "first_step_s", "train_s", "eval_s", "total_s",
              "images_per_s"):
    assert m[key] >= 0, key
  json.dumps(result.to_dict())  # storable as it is


def test_fit_trainer_with_softmax_outputs_and_label_smoothing():
  result = train.train_child(
      lambda c, **kw: small_cnn(c, softmax=True, **kw), {}, SMALL,
      trainer="fit", label_smoothing=0.1)
  assert result.ok, result.details
  assert result.reward == result.metrics["val_accuracy"] > 0.2
  assert result.metrics["trainer"] == "fit"


def test_imagenet_pipeline_trains_one_step_under_mock_data(tmp_path):
  with tfds.testing.mock_data(num_examples=8, data_dir=str(tmp_path)):
    result = train.train_child(small_cnn, {"width": 8}, dataset="imagenet2012",
                               data_dir=str(tmp_path), image_size=32,
                               batch_size=4, steps=1, eval_examples=6,
                               optimizer="adam", fused_optimizer=False)
  assert result.ok, result.details
  assert result.metrics["optimizer"] == "Adam"
  assert result.metrics["steps"] == 1
  assert result.metrics["val_examples"] == 6  # the short batch is padded
  assert 0 <= result.reward <= 1


def test_mirrored_strategy_over_two_logical_cpus():
  # Logical devices must be set before TensorFlow initialises its devices,
  # hence a fresh interpreter.
  script = textwrap.dedent(f"""
      import json, sys
      import tensorflow as tf
      cpu = tf.config.list_physical_devices("CPU")[0]
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
      sys.path.insert(0, {str(ROOT)!r})
      from graph_nas import train
      from tests.test_train import small_cnn
      result = train.train_child(small_cnn, {{"width": 8}},
                                 strategy="mirrored",
                                 data_dir={str(TFDS_DIR)!r},
                                 train_examples=512, eval_examples=200,
                                 batch_size=64, steps=6)
      print("RESULT " + json.dumps(result.to_dict()))
  """)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                        text=True, cwd=ROOT, env=env, timeout=300,
                        check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert lines, proc.stdout[-2000:] + proc.stderr[-3000:]
  result = json.loads(lines[-1][len("RESULT "):])
  assert result["status"] == "ok", result
  assert result["metrics"]["replicas"] == 2
  assert result["metrics"]["optimizer"] == "_FusedOptimizer"
  assert result["metrics"]["val_examples"] == 200


def test_failing_model_fn_is_a_failed_result():
  def broken(config, **kwargs):
    raise ValueError(f"no such block: {config['block']}")

  result = train.train_child(broken, {"block": "mbconv9"}, SMALL)
  assert result.status == "failed" and result.reward is None
  assert "model_fn raised ValueError: no such block: mbconv9" in result.reason
  assert "Traceback" in result.details

  result = train.train_child(lambda c, **kw: "not a model", {}, SMALL)
  assert result.status == "failed" and "not a keras.Model" in result.reason


@pytest.mark.parametrize("trainer", ["fast", "fit"])
def test_nan_loss_is_a_failed_result(trainer):
  result = train.train_child(small_cnn, {"width": 8, "nan": True}, SMALL,
                             trainer=trainer, steps=4)
  assert result.status == "failed" and result.reward is None
  assert "non-finite training loss" in result.reason
  assert result.metrics["params"] > 0


def test_huge_learning_rate_diverges_into_a_failed_result():
  result = train.train_child(small_cnn, {"width": 8}, SMALL, steps=30,
                             learning_rate=1e30, warmup_fraction=0.0,
                             weight_decay=None, steps_per_execution=4)
  assert result.status == "failed"
  assert "non-finite" in result.reason


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_fused_optimizer_matches_the_keras_optimizer(kind):
  settings = train.TrainSettings(optimizer=kind, weight_decay=1e-2,
                                 clipnorm=0.5, learning_rate=0.3)
  rng = np.random.default_rng(0)
  init = [rng.normal(size=(3, 4)).astype("float32"),
          rng.normal(size=(4,)).astype("float32")]
  keras_vars = [keras.Variable(x) for x in init]
  fused_vars = [keras.Variable(x) for x in init]
  # pylint: disable=protected-access
  reference = train._make_optimizer(settings, 10)
  reference.build(keras_vars)
  fused = train._FusedOptimizer(settings, 10, fused_vars)
  # pylint: enable=protected-access
  step_reference = tf.function(lambda g: reference.apply(g, keras_vars))
  step_fused = tf.function(lambda g: fused.apply(g, fused_vars))
  for _ in range(6):  # warm-up, cosine decay, clipping, weight decay
    grads = [tf.constant(rng.normal(size=x.shape).astype("float32"))
             for x in init]
    step_reference(grads)
    step_fused(grads)
  for a, b, x in zip(keras_vars, fused_vars, init):
    assert np.abs(a.numpy() - x).max() > 1e-3  # it moved
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


def test_mixed_precision_keeps_the_global_policy():
  result = train.train_child(small_cnn, {"width": 8}, SMALL, steps=2,
                             eval_examples=128, mixed_precision="mixed_float16")
  assert result.ok, result.details
  # float16 needs loss scaling: the Keras LossScaleOptimizer, not the fused.
  assert result.metrics["optimizer"] == "LossScaleOptimizer"
  assert keras.config.dtype_policy().name == "float32"


def test_out_of_memory_is_a_failed_result():
  result = train.train_child(oom_cnn, {}, SMALL, steps=2)
  assert result.status == "failed"
  assert result.reason.startswith("out of memory: ResourceExhaustedError")


def test_mnas_reward():
  assert train.mnas_reward(0.8, 1e6, 1e6) == pytest.approx(0.8)
  assert train.mnas_reward(0.8, 2e6, 1e6) == pytest.approx(0.8 * 2**-0.07)
  assert train.mnas_reward(0.8, 5e5, 1e6) > 0.8  # alpha=-0.07: a bonus
  assert train.mnas_reward(0.8, 5e5, 1e6, alpha=0.0) == pytest.approx(0.8)
  assert train.mnas_reward(0.8, 2e6, 1e6, beta=-1) == pytest.approx(0.4)
  with pytest.raises(GraphNasError):
    train.mnas_reward(0.8, None, 1e6)


def test_caller_mistakes_raise(tmp_path):
  with pytest.raises(GraphNasError, match="unknown strategy 'gpus'"):
    train.train_child(small_cnn, {}, SMALL, strategy="gpus")
  with pytest.raises(GraphNasError, match="unknown trainer"):
    train.train_child(small_cnn, {}, SMALL, trainer="slow")
  with pytest.raises(GraphNasError, match="unknown training setting"):
    train.train_child(small_cnn, {}, SMALL, epoch=3)
  with pytest.raises(GraphNasError, match="needs a flops_fn"):
    train.train_child(small_cnn, {}, SMALL, target_flops=1e6)
  # A missing dataset is the caller's problem, not the child's.
  with pytest.raises(GraphNasError, match="not prepared"):
    train.train_child(small_cnn, {}, SMALL, data_dir=str(tmp_path))
