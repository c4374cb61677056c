"""Tests of graph_nas.child.trainer: training and scoring children."""

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
from absl import logging

from graph_nas import child
from graph_nas.child import trainer as child_trainer, data, optimizers
from graph_nas.errors import GraphNasError
from graph_nas.child.settings import TrainSettings, mnas_reward
from tests.conftest import ROOT, cifar_data


def small_cnn(config, input_shape=(32, 32, 3), num_classes=10, *,
              preprocessing=None, softmax=False):
  """A stand-in for graph_nas.child.build_child: conv-BN-ReLU-pool blocks."""
  width = config.get("width", 16)
  inputs = keras.Input(input_shape)
  x = inputs
  if preprocessing is not None:
    mean, std = (np.asarray(v, np.float32) for v in preprocessing)
    x = keras.layers.Normalization(mean=mean, variance=std ** 2)(x)
  for i in range(config.get("blocks", 2)):
    x = keras.layers.Conv2D(width * 2**i, 3, padding="same",
                            use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  if config.get("dropout"):
    x = keras.layers.Dropout(config["dropout"])(x)
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


def oom_cnn(config, input_shape, num_classes, preprocessing=None):
  del config, preprocessing
  inputs = keras.Input(input_shape)
  x = _OutOfMemory()(inputs)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  with cifar_data(tmp_path_factory.mktemp("tfds")) as c:
    yield c


def _settings(c, **kw):
  base = dict(data_dir=c.data_dir, train_examples=2000 if c.real else None,
              eval_examples=500 if c.real else None, batch_size=64,
              epochs=2, progress_every_s=0)
  base.update(kw)
  return TrainSettings(**base)


def test_child_learns_and_reports_its_metrics(data_dir):
  trainer = child_trainer.ChildTrainer(
      _settings(data_dir, target_flops=4e6), small_cnn,
      flops_fn=lambda model: 2e6)
  result = trainer.train({}, seed=3)
  assert result.ok, result.details
  m = result.metrics
  # The generated data: 1,800 training and 200 validation images, classes
  # told apart by colour; two epochs learn it far beyond chance (0.1).
  assert m["val_examples"] == 200
  assert m["steps"] == 2 * (1800 // 64)
  assert m["val_accuracy"] > 0.6, m
  assert m["train_loss"] < 1.5, m
  # MnasNet reward: under the target, (flops / target)^-0.07 rewards it.
  assert result.reward == pytest.approx(m["val_accuracy"] * 0.5**-0.07)
  assert m["flops"] == 2e6 and m["params"] > 1000 and m["replicas"] == 1
  for key in ("train_loss", "train_accuracy", "val_loss", "build_s",
              "trace_s", "first_step_s", "train_s", "eval_s", "total_s",
              "images_per_s"):
    assert m[key] >= 0, key
  assert m["seed"] == 3
  json.dumps(result.to_dict())  # storable as it is


def test_a_child_learns_real_cifar10(real_cifar):
  trainer = child_trainer.ChildTrainer(_settings(real_cifar), small_cnn)
  result = trainer.train({}, seed=3)
  assert result.ok, result.details
  m = result.metrics
  assert m["val_examples"] == 500 and m["steps"] == 2 * (2000 // 64)
  assert m["val_accuracy"] > 0.2, m  # chance is 0.1


def test_the_seed_decides_initialisation_order_augmentation_and_dropout(
    data_dir):
  settings = _settings(data_dir, steps=4)
  trainer = child_trainer.ChildTrainer(settings, small_cnn)
  config = {"width": 8, "dropout": 0.3}
  a, b = trainer.train(config, 7), trainer.train(config, 7)
  c = trainer.train(config, 8)
  assert a.metrics["train_loss"] == pytest.approx(b.metrics["train_loss"],
                                                  rel=1e-5)
  assert a.metrics["val_loss"] == pytest.approx(b.metrics["val_loss"],
                                                rel=1e-5)
  assert c.metrics["val_loss"] != pytest.approx(a.metrics["val_loss"],
                                                rel=1e-5)
  # The training order: one permutation per epoch, drawn from the seed.
  # pylint: disable=protected-access
  rows_a = trainer._rows(np.random.default_rng(1), 10)
  rows_b = trainer._rows(np.random.default_rng(1), 10)
  np.testing.assert_array_equal(rows_a, rows_b)
  per_epoch = trainer.steps_per_epoch()
  assert per_epoch == 1800 // 64
  rows = trainer._rows(np.random.default_rng(1), per_epoch + 1)
  first = rows[:per_epoch].ravel()
  assert len(set(first)) == first.size  # no example twice in an epoch
  np.testing.assert_array_equal(rows[:10], rows_a)  # total changes no order
  second = np.random.default_rng(2)
  assert not np.array_equal(trainer._rows(second, 1), rows_a[:1])


def test_trainer_matches_keras_fit_on_a_fixed_unaugmented_stream(data_dir):
  """Keras fit is the oracle: the same batches, initial weights and
  optimiser give the same training loss."""
  steps = 3
  settings = _settings(data_dir, steps=steps, augment=False,
                       weight_decay=1e-3, learning_rate=0.05)
  trainer = child_trainer.ChildTrainer(settings, small_cnn)
  result, model = trainer.train({"width": 8}, seed=5, keep_model=True)
  assert result.ok, result.details
  # The same initial weights (the seed is set before the build) and the
  # order of the examples the trainer used.
  keras.utils.set_random_seed(5)
  info = trainer.info
  oracle = small_cnn({"width": 8}, preprocessing=(info.mean, info.std))
  rows = trainer.training_plan(5, steps)[0].ravel()
  images = tf.gather(trainer._train_data.images, rows)  # pylint: disable=protected-access
  labels = tf.gather(trainer._train_data.labels, rows)  # pylint: disable=protected-access
  oracle.compile(optimizer=optimizers.keras_optimizer(settings, steps),
                 loss=keras.losses.SparseCategoricalCrossentropy(
                     from_logits=True))
  history = oracle.fit(tf.cast(images, tf.float32), labels,
                       batch_size=settings.batch_size, epochs=1,
                       shuffle=False, verbose=0)
  assert result.metrics["train_loss"] == pytest.approx(
      history.history["loss"][-1], rel=1e-4)
  for a, b in zip(model.get_weights(), oracle.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_fused_optimizer_matches_the_keras_optimizer(kind):
  settings = TrainSettings(optimizer=kind, weight_decay=1e-2, clipnorm=0.5,
                           learning_rate=0.3)
  rng = np.random.default_rng(0)
  init = [rng.normal(size=(3, 4)).astype("float32"),
          rng.normal(size=(4,)).astype("float32")]
  keras_vars = [keras.Variable(x) for x in init]
  fused_vars = [keras.Variable(x) for x in init]
  reference = optimizers.keras_optimizer(settings, 10)
  reference.build(keras_vars)
  fused = optimizers.FusedOptimizer(settings, 10, fused_vars)
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


def test_progress_lines_inside_a_child(data_dir, monkeypatch):
  lines = []
  monkeypatch.setattr(logging, "info",
                      lambda msg, *args: lines.append(msg % args))
  trainer = child_trainer.ChildTrainer(
      _settings(data_dir, steps=4, progress_every_s=1e-9), small_cnn)
  assert trainer.train({"width": 8}, 1, label="trial 9").ok
  progress = [l for l in lines if l.startswith("trial 9: step ")]
  assert progress and "/4, " in progress[0] and "images/s" in progress[0]
  assert progress[0].endswith("s elapsed")


def test_softmax_outputs_and_label_smoothing(data_dir):
  trainer = child_trainer.ChildTrainer(
      _settings(data_dir, label_smoothing=0.1, steps=6),
      lambda c, **kw: small_cnn(c, softmax=True, **kw))
  result = trainer.train({"width": 8}, 0)
  assert result.ok, result.details
  assert 0 <= result.reward == result.metrics["val_accuracy"] <= 1
  assert np.isfinite(result.metrics["val_loss"])


def test_failures_are_results(data_dir):
  settings = _settings(data_dir, steps=2)

  def broken(config, **kwargs):
    raise ValueError(f"unknown block {config['block']}")

  trainer = child_trainer.ChildTrainer(settings, broken)
  result = trainer.train({"block": "mbconv9"}, 0)
  assert not result.ok and result.reward is None
  assert result.reason == "model_fn raised ValueError: unknown block mbconv9"
  assert "Traceback" in result.details
  result = child_trainer.ChildTrainer(
      settings, lambda c, **kw: "not a model").train({}, 0)
  assert "not a keras.Model" in result.reason
  result = child_trainer.ChildTrainer(settings, small_cnn).train(
      {"width": 8, "nan": True}, 0)
  assert result.status == "failed" and "non-finite" in result.reason
  result = child_trainer.ChildTrainer(settings, oom_cnn).train({}, 0)
  assert result.status == "failed"
  assert result.reason.startswith("out of memory: ResourceExhaustedError")


def test_mixed_precision_keeps_the_global_policy(data_dir):
  result = child_trainer.ChildTrainer(
      _settings(data_dir, steps=2, mixed_precision="mixed_float16"),
      small_cnn).train({"width": 8}, 0)
  assert result.ok, result.details
  assert keras.config.dtype_policy().name == "float32"


def test_caller_mistakes_raise(tmp_path, data_dir):
  with pytest.raises(GraphNasError, match="strategy='gpus'"):
    TrainSettings(strategy="gpus").check()
  with pytest.raises(GraphNasError, match="unknown training setting"):
    TrainSettings().replace(epoch=3)
  with pytest.raises(GraphNasError, match="needs a flops_fn"):
    child_trainer.ChildTrainer(TrainSettings(target_flops=1e6), small_cnn)
  with pytest.raises(GraphNasError, match="num_classes=100"):
    child_trainer.ChildTrainer(TrainSettings(num_classes=100), small_cnn)
  with pytest.raises(GraphNasError, match="not prepared"):
    child_trainer.ChildTrainer(TrainSettings(data_dir=str(tmp_path)),
                               small_cnn).train({}, 0)
  assert mnas_reward(0.8, 2e6, 1e6, beta=-1) == pytest.approx(0.4)
  with pytest.raises(GraphNasError):
    mnas_reward(0.8, None, 1e6)


def test_imagenet_stream_trains_under_mock_data(tmp_path):
  with tfds.testing.mock_data(num_examples=8, data_dir=str(tmp_path)):
    trainer = child_trainer.ChildTrainer(
        TrainSettings(dataset="imagenet2012", data_dir=str(tmp_path),
                      image_size=32, batch_size=4, steps=3, eval_examples=6,
                      optimizer="adam", progress_every_s=0), small_cnn)
    result = trainer.train({"width": 8}, 0)
    assert result.ok, result.details
    assert not trainer.in_memory and trainer.info.input_shape == (32, 32, 3)
    assert result.metrics["steps"] == 3
    assert result.metrics["val_examples"] == 6  # the short batch is padded
    assert 0 <= result.reward <= 1
    # The stream lives as long as the trainer: a second child continues it.
    assert trainer.train({"width": 8}, 1).ok


def test_the_saved_best_child_stands_alone(tmp_path, data_dir):
  """load_model(path).predict(raw uint8 images) gives the reported test
  accuracy, in a process that never imports graph_nas."""
  from graph_nas.search import evaluators
  settings = _settings(data_dir, steps=6, eval_examples=None)
  final = settings.replace(eval_role="test",
                           eval_examples=300 if data_dir.real else None)
  evaluator = evaluators.ChildEvaluator(settings, final)
  config = {"stem_filters": 8, "stem_stride": 2, "head_filters": 32,
            "layers": [{"filters": 8, "expand_ratio": 1, "se_ratio": 0.25}]}
  out = evaluator.finalize(config, str(tmp_path / "best_child"), seed=2)
  assert out["status"] == "ok", out
  arch = json.loads((tmp_path / "best_child" /
                     "architecture.json").read_text())
  assert arch["dataset"] == "cifar10" and arch["image_size"] == 32
  assert arch["training"]["steps"] == 6
  assert arch["test_accuracy"] == out["test_accuracy"]
  test = data.load_arrays("cifar10", "test", data_dir=data_dir.data_dir,
                          eval_examples=final.eval_examples)
  np.savez(tmp_path / "test.npz", images=test.images.numpy(),
           labels=test.labels.numpy())
  script = textwrap.dedent(f"""
      import numpy as np, keras
      d = np.load({str(tmp_path / 'test.npz')!r})
      model = keras.models.load_model(
          {str(tmp_path / 'best_child' / 'model.keras')!r})
      logits = model.predict(d["images"], verbose=0)
      print("ACCURACY", float(np.mean(logits.argmax(-1) == d["labels"])))
  """)
  proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                        text=True, cwd=str(tmp_path), timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                        check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("ACCURACY")]
  assert lines, proc.stderr[-3000:]
  assert test.images.dtype == tf.uint8
  assert float(lines[0].split()[1]) == pytest.approx(out["test_accuracy"],
                                                     abs=1e-6)


def test_mirrored_strategy_over_two_logical_cpus(data_dir):
  # Logical devices must be set before TensorFlow initialises its devices,
  # hence a fresh interpreter.
  script = textwrap.dedent(f"""
      import json, sys
      import tensorflow as tf
      cpu = tf.config.list_physical_devices("CPU")[0]
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
      sys.path.insert(0, {str(ROOT)!r})
      from graph_nas.child import trainer as child_trainer
      from graph_nas.child.settings import TrainSettings
      from tests.conftest import cifar_data
      from tests.test_child_trainer import small_cnn
      with cifar_data({str(ROOT / '.pytest_cache' / 'mock_tfds')!r}) as c:
        trainer = child_trainer.ChildTrainer(TrainSettings(
            strategy="mirrored", data_dir=c.data_dir, eval_examples=200,
            batch_size=64, steps=6, progress_every_s=0), small_cnn)
        result = trainer.train({{"width": 8}}, 0)
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
  assert result["metrics"]["val_examples"] == 200


def test_build_child_with_preprocessing_takes_raw_images():
  info = data.dataset_info("cifar10")
  model = child.build_child(
      {"stem_filters": 8, "layers": [{"filters": 8}]},
      preprocessing=(info.mean, info.std))
  assert model.layers[1].name == "normalize"
  raw = np.full((1, 32, 32, 3), 128, np.uint8)
  assert np.isfinite(model.predict(raw, verbose=0)).all()
  with pytest.raises(GraphNasError, match="preprocessing"):
    child.build_child({"layers": [{}]}, preprocessing=((1, 2), (1, 2)))


def test_rungs_score_a_child_midway_and_a_stopped_child_ends_there(
    data_dir):
  """Early stopping inside a child: scored at each rung with the same
  evaluation; stopped at the second rung, its training ends there; going
  on, it trains exactly as without rungs (op determinism on)."""
  from graph_nas.search import halving
  settings = _settings(data_dir, deterministic=True)
  trainer = child_trainer.ChildTrainer(settings, small_cnn)
  trainer.prepare()
  total = trainer.total_steps()
  plain = trainer.train({}, seed=5)
  asked = []

  def go_on(report):
    asked.append(report)
    return True

  full_trial = halving.Trial("t0", (0.25, 0.5), go_on)
  full = trainer.train({}, seed=5, trial=full_trial)
  assert full.ok and [r.rung for r in asked] == [0, 1]
  assert full.reward == plain.reward  # the rungs change nothing
  assert full.metrics["steps_trained"] == total
  asked.clear()
  stop_trial = halving.Trial("t1", (0.25, 0.5),
                             lambda r: asked.append(r) or r.rung == 0)
  stopped = trainer.train({}, seed=5, trial=stop_trial)
  assert stopped.ok and stop_trial.should_stop() and stop_trial.rung == 1
  m = stopped.metrics
  assert m["steps_trained"] == round(0.5 * total) < total
  assert stopped.reward == m["val_accuracy"] == asked[-1].value
  # The same child at the same point of the same run scores the same.
  assert [r.value for r in asked] == full_trial.scores
  assert m["train_loss"] > 0 and m["val_examples"] == 200
