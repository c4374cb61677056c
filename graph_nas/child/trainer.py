"""The child trainer: one object trains and scores every child of a search.

(~430 lines: reading the data once, building, training, scoring, saving and
failing a child are one object's life; its traced functions are in
graph_nas.child.steps, its progress lines in graph_nas.child.progress.)

    trainer = ChildTrainer(settings, child.build_child,
                           flops_fn=child.count_flops)
    result = trainer.train(config, seed=7)        # an EvalResult
    result, model = trainer.train(config, seed=7, keep_model=True)

What it holds: `ChildTrainer` (the long-lived data and strategy; a
child's build, training loop, scoring and failures) and small helpers.
A child's traced train and evaluation functions are
graph_nas.child.steps; the progress reporting is graph_nas.child.progress.

What lives as long as the trainer (built once, on first use): the
`tf.distribute` strategy, the dataset description and the training and
evaluation data (CIFAR-10 decoded into memory; ImageNet as one endless
`tf.data` stream). What each child gets: its model (built by `model_fn`),
its optimiser and its traced train / evaluation functions.

One training path. A child's train function runs `steps_per_execution`
steps per call into TensorFlow: it gathers each batch from the in-memory
images by index (or takes it from the stream), augments it with stateless
random ops, and applies a fused optimiser (`graph_nas.child.optimizers`). The
per-child `seed` fixes everything random about a child: weight
initialisation and dropout (Keras' global seed, set before the build), the
order of the training examples (a permutation drawn from the seed) and the
augmentation (a stateless seed per step). With `settings.deterministic`
TensorFlow's op determinism is on, so the same seed gives the same reward
to the last bit; on ImageNet the stream's order is shared by the children
(it is not rebuilt per child), so there only initialisation, dropout and
flips follow the seed.

Children take raw images (0..255): `model_fn` receives
``preprocessing=(mean, std)`` and must normalise inside the model, so that a
saved child stands alone.

Failures of a child are results, not exceptions: a `model_fn` that raises,
a non-finite loss or running out of memory gives ``status="failed"`` with
the reason. Mistakes of the caller (bad settings, a missing dataset) raise
`GraphNasError`.

Reward: validation accuracy, or with ``target_flops`` MnasNet's
``accuracy * (flops / target_flops) ** w``.

Early stopping: given a `graph_nas.search.halving.Trial`, a child is also
scored (the same reward) when its training reaches each of the trial's
rungs (a share of its steps; the learning-rate schedule is the full
budget's, so a stopped child is the start of a full one) and reports it;
when the search says stop, its training ends there and that score is its
result (metrics `steps_trained`, and the trial's `rung`,
`budget_fraction`, `rung_scores`).

Progress: every ``settings.progress_every_s`` a child logs a progress line
(step, speed, ETA) and hands a `Progress` to each of ``trainer.observers``;
that lives in graph_nas.child.progress (`Progress` and `format_duration`
are importable from here too).
"""

import contextlib
import gc
import math
import time
import traceback

import numpy as np
import tensorflow as tf
import keras
from absl import logging

from graph_nas.child import data as data_lib
from graph_nas.child import optimizers
from graph_nas.child import steps as steps_lib
from graph_nas.child import strategies
# Progress and format_duration: re-exported (callers import them from here).
from graph_nas.child.progress import (  # pylint: disable=unused-import
    Progress, ProgressClock, format_duration)
from graph_nas.errors import GraphNasError, SetupError
from graph_nas.results import EvalResult
from graph_nas.child.settings import TrainSettings, mnas_reward

class _ChildFailure(Exception):
  """A child-specific failure detected while training (e.g. a NaN loss)."""


class _BuildError(Exception):
  """model_fn failed (the cause is the exception it raised)."""


def _describe(e):
  text = str(e).strip().splitlines()
  first = text[0] if text else ""
  return f"{type(e).__name__}: {first}"[:500]


def outputs_probabilities(model):
  """Whether the model ends in a softmax (else its outputs are logits)."""
  layer = model.layers[-1] if model.layers else None
  if isinstance(layer, keras.layers.Softmax):
    return True
  activation = getattr(layer, "activation", None)
  return getattr(activation, "__name__", "") == "softmax"


@contextlib.contextmanager
def _graph_optimizer(light):
  """Grappler's meta optimizer off while `light` (children on a CPU).

  A child's graphs run a few hundred steps at most; on a CPU the meta
  optimizer costs ~1 s per child at the first call and its rewrites did
  not make the steps faster (benchmarks/child_cost.py). On GPUs and TPUs
  (layout rewrites, fusions) it stays on.
  """
  if not light:
    yield
    return
  before = tf.config.optimizer.get_experimental_options().get(
      "disable_meta_optimizer", False)
  tf.config.optimizer.set_experimental_options(
      {"disable_meta_optimizer": True})
  try:
    yield
  finally:
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": before})


class ChildTrainer:
  """Trains and scores children of one search under fixed settings."""

  def __init__(self, settings: TrainSettings, model_fn, *, flops_fn=None,
               params_fn=None, strategy=None):
    """Args:
      settings: the TrainSettings of every child.
      model_fn: ``model_fn(config, *, input_shape, num_classes,
        preprocessing, **settings.model_kwargs) -> keras.Model`` (e.g.
        graph_nas.child.build_child); outputs logits (or a softmax).
      flops_fn: ``flops_fn(model) -> float`` (multiply-adds), recorded as
        metrics["flops"]; needed for ``target_flops``.
      params_fn: ``params_fn(model) -> int``; default count_params.
      strategy: a tf.distribute.Strategy instead of settings.strategy.
    """
    self.settings = settings.check()
    if settings.target_flops is not None and flops_fn is None:
      raise GraphNasError("target_flops (the MnasNet reward) needs a "
                          "flops_fn")
    self.model_fn = model_fn
    self.flops_fn = flops_fn
    self.params_fn = params_fn
    self._strategy = strategy
    self.info = data_lib.dataset_info(settings.dataset,
                                      image_size=settings.image_size)
    if (settings.num_classes is not None and
        int(settings.num_classes) != self.info.num_classes):
      raise GraphNasError(
          f"num_classes={settings.num_classes} but {settings.dataset} has "
          f"{self.info.num_classes} classes")
    self.in_memory = data_lib.is_in_memory(settings.dataset)
    self._train_data = self._eval_data = None
    self.data_seconds = 0.0
    # Callables given a Progress at each progress line and at the end of
    # each child's training (see the module docstring).
    self.observers = []

  # ----------------------------------------------------------- long-lived
  @property
  def strategy(self):
    if self._strategy is None:
      self._strategy = strategies.make_strategy(self.settings.strategy,
                                                tpu=self.settings.tpu)
    elif isinstance(self._strategy, str):
      self._strategy = strategies.make_strategy(self._strategy,
                                                tpu=self.settings.tpu)
    return self._strategy

  def prepare(self):
    """Reads the data (once); raises SetupError when it is missing."""
    if self._train_data is not None:
      return
    try:
      self._prepare()
    except SetupError:
      raise
    except GraphNasError as e:
      raise SetupError(str(e)) from e

  def _prepare(self):
    s = self.settings
    if s.deterministic:
      tf.config.experimental.enable_op_determinism()
    replicas = self.strategy.num_replicas_in_sync
    if s.batch_size % replicas:
      raise GraphNasError(f"batch_size={s.batch_size} is not a multiple of "
                          f"the {replicas} replicas")
    t0 = time.perf_counter()
    common = dict(data_dir=s.data_dir, download=s.download or None,
                  image_size=s.image_size)
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.WARNING)  # tfds' reading lines
    try:
      self._eval_data = data_lib.load_split(
          s.dataset, s.eval_role, s.batch_size,
          eval_examples=s.eval_examples, **common)
      self._train_data = data_lib.load_split(
          s.dataset, "train", s.batch_size, train_examples=s.train_examples,
          seed=0, **common)
    finally:
      logging.set_verbosity(verbosity)
    if self.in_memory:
      if len(self._train_data) < s.batch_size:
        raise GraphNasError(f"{s.dataset}: {len(self._train_data)} training "
                            f"examples make no full batch of "
                            f"{s.batch_size}")
      if len(self._eval_data) == 0:
        raise GraphNasError(f"{s.dataset}: the {s.eval_role} split is empty")
    self.data_seconds = time.perf_counter() - t0
    path, _ = data_lib.resolve_data_dir(s.data_dir)
    sizes = (f"{len(self._train_data)} training and {len(self._eval_data)} "
             f"{s.eval_role} images in memory" if self.in_memory else
             "streamed")
    logging.info("%s from %s: %s (%.1fs)", s.dataset, path, sizes,
                 self.data_seconds)

  def steps_per_epoch(self):
    s = self.settings
    if self.in_memory:
      return len(self._train_data) // s.batch_size
    n = s.train_examples
    if n is None:
      spec = data_lib._spec(s.dataset)  # pylint: disable=protected-access
      n = spec["train_size"] - spec["holdout"]
    return max(1, int(n) // s.batch_size)

  def total_steps(self):
    s = self.settings
    if s.steps is not None:
      return int(s.steps)
    return max(1, int(round(s.epochs * self.steps_per_epoch())))

  # ------------------------------------------------------------- a child
  def train(self, config, seed: int, *, keep_model: bool = False,
            label: str = "child", trial=None):
    """Builds, trains and scores the child of `config` with `seed`.

    trial: a graph_nas.search.halving.Trial to report to at its rungs
    (early stopping; see the module docstring), or None.
    Returns an EvalResult, or (EvalResult, model or None) with keep_model.
    """
    self.prepare()
    t_start = time.perf_counter()
    total = self.total_steps()
    metrics = {"steps": total, "examples": total * self.settings.batch_size,
               "replicas": self.strategy.num_replicas_in_sync,
               "seed": int(seed),
               "image_size": int(self.info.input_shape[0])}
    light = (not tf.config.list_logical_devices("GPU") and
             not isinstance(self.strategy, tf.distribute.TPUStrategy))
    with _graph_optimizer(light):
      result, model = self._train(config, seed, total, label, metrics,
                                  t_start, trial)
    metrics["total_s"] = time.perf_counter() - t_start
    if not result.ok:
      model = None
      gc.collect()  # free a failed child's memory before the next one
    if keep_model:
      return result, model
    return result

  def _train(self, config, seed, total, label, metrics, t_start, trial):
    """(EvalResult, model): a child's failures become failed results."""
    model = None
    try:
      model = self._build(config, seed)
      metrics["build_s"] = time.perf_counter() - t_start
      metrics["params"] = int(self.params_fn(model) if self.params_fn
                              else model.count_params())
      if self.flops_fn is not None:
        metrics["flops"] = float(self.flops_fn(model))
      metrics.update(self._fit(model, seed, total, label, trial,
                               metrics.get("flops")))
      reward = self._reward(metrics, metrics.get("flops"))
      return EvalResult("ok", reward, metrics), model
    except SetupError:
      raise
    except _ChildFailure as e:
      return self._failed(str(e), metrics), None
    except tf.errors.ResourceExhaustedError as e:
      return self._failed(f"out of memory: {_describe(e)}", metrics,
                          e), None
    except _BuildError as e:
      return self._failed(f"model_fn raised {_describe(e.__cause__)}",
                          metrics, e.__cause__), None
    except Exception as e:  # pylint: disable=broad-except
      return self._failed(f"training raised {_describe(e)}", metrics,
                          e), None

  def _failed(self, reason, metrics, exc=None):
    details = ""
    if exc is not None:
      details = "".join(traceback.format_exception(type(exc), exc,
                                                   exc.__traceback__))
    logging.info("child failed: %s", reason)
    return EvalResult("failed", None, metrics, reason, details[-4000:])

  def build(self, config, seed: int):
    """The untrained child of `config`, built as `train` builds it (Keras'
    seed set from `seed`, in the strategy's scope): what zero-cost proxies
    score (graph_nas.child.proxies). Raises what model_fn raises."""
    try:
      return self._build(config, seed)
    except _BuildError as e:
      raise e.__cause__ from None

  def sample_batch(self, n: int, seed: int = 0):
    """n training images [n, H, W, C] (float32, raw 0..255) with their
    labels [n]: distinct examples drawn with `seed` from the in-memory
    training data, or the first n of the training stream. Reads the data
    first (`prepare`)."""
    self.prepare()
    if self.in_memory:
      total = len(self._train_data)
      rows = np.sort(np.random.default_rng([int(seed), 0x7072]).permutation(
          total)[:min(int(n), total)])
      images = tf.gather(self._train_data.images, rows)
      labels = tf.gather(self._train_data.labels, rows)
      return tf.cast(images, tf.float32), labels
    images, labels = [], []
    got = 0
    for x, y in self._train_data.dataset:
      images.append(x)
      labels.append(y)
      got += int(y.shape[0])
      if got >= n:
        break
    return (tf.cast(tf.concat(images, 0)[:n], tf.float32),
            tf.concat(labels, 0)[:n])

  def _build(self, config, seed):
    s = self.settings
    keras.utils.set_random_seed(int(seed) % (2 ** 32))
    policy = keras.config.dtype_policy()
    try:
      if s.mixed_precision:
        keras.config.set_dtype_policy(s.mixed_precision)
      with self.strategy.scope():
        model = self.model_fn(
            config, input_shape=self.info.input_shape,
            num_classes=self.info.num_classes,
            preprocessing=(self.info.mean, self.info.std),
            **dict(s.model_kwargs))
        if not isinstance(model, keras.Model):
          raise TypeError(f"model_fn returned {type(model).__name__}, not "
                          "a keras.Model")
        if not model.built:
          model.build((None,) + tuple(self.info.input_shape))
      return model
    except tf.errors.ResourceExhaustedError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise _BuildError() from e
    finally:
      keras.config.set_dtype_policy(policy)

  def _reward(self, scores, flops):
    """The reward of evaluation `scores` (val_loss, val_accuracy)."""
    s = self.settings
    if not math.isfinite(scores["val_loss"]):
      raise _ChildFailure(f"non-finite validation loss "
                          f"({scores['val_loss']})")
    reward = float(scores["val_accuracy"])
    if s.target_flops is not None:
      reward = mnas_reward(reward, flops, s.target_flops,
                           alpha=s.reward_alpha, beta=s.reward_beta)
    return reward

  # ------------------------------------------------------------ training
  def _fit(self, model, seed, total, label, trial=None, flops=None):
    """Trains `model` for `total` steps (or until `trial` says stop at a
    rung) and evaluates it; its metrics."""
    from_logits = not outputs_probabilities(model)
    trainable = model.trainable_variables
    with self.strategy.scope():
      optimizer = optimizers.make(self.settings, total, trainable,
                                  self.strategy)
    common = (self, model, from_logits, optimizer, trainable)
    rows, seeds = self.training_plan(seed, total)
    if self.in_memory:
      steps = steps_lib.InMemorySteps(*common, self._train_data, rows, seeds)
    else:
      steps = steps_lib.StreamSteps(*common, self._train_iterator(), seeds)
    rung_eval = {}

    def score():  # at a rung: the reward now (its evaluation kept)
      t0 = time.perf_counter()
      rung_eval.clear()
      rung_eval.update(self._evaluate(model, from_logits))
      rung_eval["eval_s"] = time.perf_counter() - t0
      return self._reward(rung_eval, flops)

    metrics = self._train_loop(steps.run, total, label, trial, score)
    if steps.trace_s is not None:
      metrics["trace_s"] = steps.trace_s
      metrics["first_step_s"] += steps.trace_s
    if trial is not None and trial.should_stop():
      metrics.update(rung_eval)  # stopped: its score at the rung
      return metrics
    t0 = time.perf_counter()
    metrics.update(self._evaluate(model, from_logits))
    metrics["eval_s"] = time.perf_counter() - t0
    return metrics

  def training_plan(self, seed, total):
    """(rows, step_seeds) of a child: the example indices of each step
    [total, batch] (None for a stream) and each step's augmentation seed
    [total, 2], all drawn from the child's seed."""
    rng = np.random.default_rng([int(seed) % (2 ** 32), 0x6e6173])
    seeds = rng.integers(0, 2 ** 31 - 1, size=(total, 2), dtype=np.int64)
    rows = self._rows(rng, total) if self.in_memory else None
    return rows, seeds

  def _rows(self, rng, total):
    """Example indices [total, batch]: an epoch is one permutation."""
    n, b = len(self._train_data), self.settings.batch_size
    per_epoch = n // b
    epochs = -(-total // per_epoch)
    rows = np.concatenate([rng.permutation(n)[:per_epoch * b]
                           for _ in range(epochs)])
    return rows[:total * b].reshape(total, b).astype(np.int32)

  def _train_iterator(self):
    if getattr(self, "_iterator", None) is None:
      dist = self.strategy.experimental_distribute_dataset(
          self._train_data.dataset)
      self._iterator = iter(dist)
    return self._iterator

  def _train_loop(self, run_chunk, total, label, trial=None, score=None):
    """Calls run_chunk over the budget; progress lines; loss checks; the
    trial's rungs (score() at each; the loop ends when it says stop)."""
    s = self.settings
    epoch_len = min(self.steps_per_epoch(), total)
    chunk = int(s.steps_per_execution)
    done, tail_loss, tail_correct, tail_steps = 0, 0.0, 0.0, 0
    all_loss, all_correct = 0.0, 0.0
    # The step of each rung before the end: {step: the rung's fraction}.
    rung_at = {}
    for fraction in (trial.rungs if trial is not None else ()):
      step = max(1, int(round(fraction * total)))
      if step < total:
        rung_at[step] = fraction
    clock = ProgressClock(label, total, s.batch_size, s.progress_every_s,
                          self.observers)
    while done < total:
      n = 1 if done == 0 else min(chunk, total - done)
      ahead = [step - done for step in rung_at if step > done]
      if ahead:
        n = min(n, min(ahead))  # land on the next rung
      loss_sum, correct = run_chunk(done, n)
      loss_sum = float(loss_sum)
      if not math.isfinite(loss_sum):
        raise _ChildFailure(f"non-finite training loss ({loss_sum}) within "
                            f"steps {done + 1}..{done + n}")
      done += n
      all_loss += loss_sum
      all_correct += float(correct)
      if done > total - epoch_len:  # the last epoch's worth of steps
        tail_loss += loss_sum
        tail_correct += float(correct)
        tail_steps += n
      clock.step_done(done)
      if done in rung_at:
        trial.report(score(), rung_at[done])
        if trial.should_stop():
          logging.info("%s: stopped early at step %d/%d (rung %d)", label,
                       done, total, trial.rung)
          break
    clock.finish(done)
    if tail_steps == 0:  # stopped before the last epoch: all steps done
      tail_loss, tail_correct, tail_steps = all_loss, all_correct, done
    examples = tail_steps * s.batch_size
    metrics = {"steps_trained": done,
               "first_step_s": clock.first - clock.start,
               "train_s": clock.end - clock.first,
               "train_loss": tail_loss / examples,
               "train_accuracy": tail_correct / examples}
    if done > 1 and clock.end > clock.first:
      metrics["images_per_s"] = ((done - 1) * s.batch_size /
                                 (clock.end - clock.first))
    return metrics

  # ---------------------------------------------------------- evaluation
  def _evaluate(self, model, from_logits):
    evaluation = steps_lib.Evaluation(self, model, from_logits)
    if self.in_memory:
      totals = evaluation.in_memory(self._eval_data)
    else:
      totals = evaluation.streamed(self._padded_eval())
    if totals[2] == 0:
      raise SetupError("the evaluation split is empty")
    return {"val_loss": float(totals[0] / totals[2]),
            "val_accuracy": float(totals[1] / totals[2]),
            "val_examples": int(totals[2])}

  def _padded_eval(self):
    """The evaluation stream, distributed, every batch padded (label -1)."""
    if getattr(self, "_padded", None) is None:
      b = self.settings.batch_size

      @tf.autograph.experimental.do_not_convert
      def pad(images, labels):
        n = tf.shape(labels)[0]
        images = tf.pad(images, [[0, b - n], [0, 0], [0, 0], [0, 0]])
        labels = tf.pad(labels, [[0, b - n]], constant_values=-1)
        images.set_shape([b] + images.shape[1:].as_list())
        labels.set_shape([b])
        return images, labels

      self._padded = self.strategy.experimental_distribute_dataset(
          self._eval_data.dataset.map(pad))
    return self._padded
