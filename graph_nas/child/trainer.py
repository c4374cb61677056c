"""The child trainer: one object trains and scores every child of a search.

    trainer = ChildTrainer(settings, child.build_child,
                           flops_fn=child.count_flops)
    result = trainer.train(config, seed=7)        # an EvalResult
    result, model = trainer.train(config, seed=7, keep_model=True)

What it holds: `ChildTrainer` (the long-lived data and strategy; a
child's build, training loop, scoring and failures); a child's traced
functions, all `_ChildGraphs`: `_InMemorySteps` / `_StreamSteps` (its train
function, `_TrainSteps`) and `_Evaluation`; the loss and small helpers.
The progress reporting is graph_nas.child.progress.

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
from graph_nas.child import strategies
# Progress and format_duration: re-exported (callers import them from here).
from graph_nas.child.progress import (  # pylint: disable=unused-import
    Progress, ProgressClock, format_duration)
from graph_nas.errors import GraphNasError, SetupError
from graph_nas.search.results import EvalResult
from graph_nas.child.settings import TrainSettings, mnas_reward

_SUM = tf.distribute.ReduceOp.SUM


class _ChildFailure(Exception):
  """A child-specific failure detected while training (e.g. a NaN loss)."""


class _BuildError(Exception):
  """model_fn failed (the cause is the exception it raised)."""


def _describe(e):
  text = str(e).strip().splitlines()
  first = text[0] if text else ""
  return f"{type(e).__name__}: {first}"[:500]


def _per_example_loss(labels, outputs, num_classes, from_logits,
                      label_smoothing):
  """Cross-entropy per example; labels int [B], outputs float32 [B, C]."""
  labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
  if label_smoothing:
    onehot = tf.one_hot(labels, num_classes, dtype=outputs.dtype)
    return keras.losses.categorical_crossentropy(
        onehot, outputs, from_logits=from_logits,
        label_smoothing=label_smoothing)
  return keras.losses.sparse_categorical_crossentropy(
      labels, outputs, from_logits=from_logits)


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
            label: str = "child"):
    """Builds, trains and scores the child of `config` with `seed`.

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
                                  t_start)
    metrics["total_s"] = time.perf_counter() - t_start
    if not result.ok:
      model = None
      gc.collect()  # free a failed child's memory before the next one
    if keep_model:
      return result, model
    return result

  def _train(self, config, seed, total, label, metrics, t_start):
    """(EvalResult, model): a child's failures become failed results."""
    s = self.settings
    model = None
    try:
      model = self._build(config, seed)
      metrics["build_s"] = time.perf_counter() - t_start
      metrics["params"] = int(self.params_fn(model) if self.params_fn
                              else model.count_params())
      metrics.update(self._fit(model, seed, total, label))
      if not math.isfinite(metrics["val_loss"]):
        raise _ChildFailure(f"non-finite validation loss "
                            f"({metrics['val_loss']})")
      reward = float(metrics["val_accuracy"])
      if self.flops_fn is not None:
        metrics["flops"] = float(self.flops_fn(model))
      if s.target_flops is not None:
        reward = mnas_reward(reward, metrics["flops"], s.target_flops,
                             alpha=s.reward_alpha, beta=s.reward_beta)
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

  # ------------------------------------------------------------ training
  def _fit(self, model, seed, total, label):
    """Trains `model` for `total` steps and evaluates it; its metrics."""
    from_logits = not outputs_probabilities(model)
    trainable = model.trainable_variables
    with self.strategy.scope():
      optimizer = optimizers.make(self.settings, total, trainable,
                                  self.strategy)
    common = (self, model, from_logits, optimizer, trainable)
    rows, seeds = self.training_plan(seed, total)
    if self.in_memory:
      steps = _InMemorySteps(*common, self._train_data, rows, seeds)
    else:
      steps = _StreamSteps(*common, self._train_iterator(), seeds)
    metrics = self._train_loop(steps.run, total, label)
    if steps.trace_s is not None:
      metrics["trace_s"] = steps.trace_s
      metrics["first_step_s"] += steps.trace_s
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

  def _train_loop(self, run_chunk, total, label):
    """Calls run_chunk over the budget; progress lines; loss checks."""
    s = self.settings
    epoch_len = min(self.steps_per_epoch(), total)
    chunk = int(s.steps_per_execution)
    done, tail_loss, tail_correct, tail_steps = 0, 0.0, 0.0, 0
    clock = ProgressClock(label, total, s.batch_size, s.progress_every_s,
                          self.observers)
    while done < total:
      n = 1 if done == 0 else min(chunk, total - done)
      loss_sum, correct = run_chunk(done, n)
      loss_sum = float(loss_sum)
      if not math.isfinite(loss_sum):
        raise _ChildFailure(f"non-finite training loss ({loss_sum}) within "
                            f"steps {done + 1}..{done + n}")
      done += n
      if done > total - epoch_len:  # the last epoch's worth of steps
        tail_loss += loss_sum
        tail_correct += float(correct)
        tail_steps += n
      clock.step_done(done)
    clock.finish()
    examples = tail_steps * s.batch_size
    metrics = {"first_step_s": clock.first - clock.start,
               "train_s": clock.end - clock.first,
               "train_loss": tail_loss / examples,
               "train_accuracy": tail_correct / examples}
    if total > 1 and clock.end > clock.first:
      metrics["images_per_s"] = ((total - 1) * s.batch_size /
                                 (clock.end - clock.first))
    return metrics

  # ---------------------------------------------------------- evaluation
  def _evaluate(self, model, from_logits):
    evaluation = _Evaluation(self, model, from_logits)
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


# ------------------------------------------------- a child's traced functions
class _ChildGraphs:
  """What a child's traced functions share: its model, the strategy and
  the batch split over the replicas. Each child gets fresh tf.functions
  (so TensorFlow's retracing warning is off for them)."""

  def __init__(self, trainer, model, from_logits):
    s = trainer.settings
    self.strategy = trainer.strategy
    self.replicas = self.strategy.num_replicas_in_sync
    self.batch_size = s.batch_size
    self.per_replica = s.batch_size // self.replicas
    self.num_classes = trainer.info.num_classes
    self.model = model
    self.from_logits = from_logits

  def _replica_rows(self, rows):
    """This replica's share of a batch's example indices."""
    rid = tf.distribute.get_replica_context().replica_id_in_sync_group
    return rows[rid * self.per_replica:(rid + 1) * self.per_replica]

  def _sum(self, value):
    """A per-replica value summed over the replicas."""
    return self.strategy.reduce(_SUM, value, axis=None)


class _TrainSteps(_ChildGraphs):
  """A child's train function: `run(start, n)` runs steps start ..
  start + n - 1 of its training plan in one call into TensorFlow and
  returns (the sum of their losses, their correct predictions).
  `trace_s`: how long tracing it up front took (None: traced at its first
  call). Subclasses: where the batches come from."""

  def __init__(self, trainer, model, from_logits, optimizer, trainable):
    super().__init__(trainer, model, from_logits)
    s = trainer.settings
    self.optimizer = optimizer
    self.trainable = trainable
    self.global_batch = float(s.batch_size)
    self.smoothing = float(s.label_smoothing)
    self.crop = trainer.in_memory
    self.augment = bool(s.augment)
    # A tf.while_loop over steps that gathers from the in-memory images ran
    # each step ~2x slower on a CPU than one call per step
    # (benchmarks/README_train.md), so steps_per_execution=1 (the default)
    # runs one step per call, without a loop; TPUs want more per call.
    self.single = int(s.steps_per_execution) == 1
    self.replica_step = self._replica_step
    if s.jit_compile:
      self.replica_step = tf.function(self._replica_step, jit_compile=True)
    self.trace_s = None

  def _replica_step(self, images, labels, step_seed):
    """One replica's training step: (loss sum, correct) of its examples."""
    ctx = tf.distribute.get_replica_context()
    step_seed = tf.random.experimental.stateless_fold_in(
        step_seed, ctx.replica_id_in_sync_group)
    x = tf.cast(images, tf.float32)
    if self.augment:
      x = data_lib.augment_batch(x, step_seed, crop=self.crop)
    with tf.GradientTape() as tape:
      outputs = tf.cast(self.model(x, training=True), tf.float32)
      per_example = _per_example_loss(labels, outputs, self.num_classes,
                                      self.from_logits, self.smoothing)
      loss = tf.reduce_sum(per_example) / self.global_batch
      if self.model.losses:
        loss += tf.add_n(self.model.losses) / self.replicas
      scaled = self.optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, self.trainable)
    self.optimizer.apply(grads, self.trainable)
    correct = tf.equal(tf.argmax(outputs, -1, output_type=tf.int32),
                       tf.cast(labels, tf.int32))
    return (tf.reduce_sum(per_example),
            tf.reduce_sum(tf.cast(correct, tf.float32)))

  def _loop(self, n, step):
    """(loss sum, correct) of step(0) .. step(n - 1), over the replicas;
    with `single` just step(0), without a loop."""
    if self.single:  # one step per call: no loop (faster on CPU)
      per = step(0)
      return self._sum(per[0]), self._sum(per[1])

    def body(i, loss_sum, correct):
      per = step(i)
      return i + 1, loss_sum + self._sum(per[0]), correct + self._sum(per[1])
    _, loss_sum, correct = tf.while_loop(
        lambda i, *_: i < n, body,
        (tf.constant(0), tf.constant(0.0), tf.constant(0.0)))
    return loss_sum, correct


class _InMemorySteps(_TrainSteps):
  """Steps that gather their batches from the in-memory images by index
  (the plan's rows); traced once up front, for any number of steps."""

  def __init__(self, trainer, model, from_logits, optimizer, trainable,
               data, rows, seeds):
    super().__init__(trainer, model, from_logits, optimizer, trainable)
    self.data, self.rows, self.seeds = data, rows, seeds
    self._steps = tf.function(self._train_steps, autograph=False)
    t0 = time.perf_counter()
    self._steps.get_concrete_function(
        data.images, data.labels, tf.TensorSpec([None, self.batch_size],
                                                tf.int32),
        tf.TensorSpec([None, 2], tf.int64))
    self.trace_s = time.perf_counter() - t0
    self._steps._omit_frequent_tracing_warning = True  # one per child

  def run(self, start, n):
    return self._steps(self.data.images, self.data.labels,
                       tf.constant(self.rows[start:start + n]),
                       tf.constant(self.seeds[start:start + n]))

  def _train_steps(self, images, labels, chunk_rows, chunk_seeds):
    return self._loop(tf.shape(chunk_rows)[0], lambda i: self.strategy.run(
        self._replica_gather, args=(images, labels, chunk_rows[i],
                                    chunk_seeds[i])))

  def _replica_gather(self, images, labels, rows, step_seed):
    rows = self._replica_rows(rows)
    return self.replica_step(tf.gather(images, rows),
                             tf.gather(labels, rows), step_seed)


class _StreamSteps(_TrainSteps):
  """Steps that take their batches from the trainer's (distributed)
  stream; traced at the first call."""

  def __init__(self, trainer, model, from_logits, optimizer, trainable,
               iterator, seeds):
    super().__init__(trainer, model, from_logits, optimizer, trainable)
    self.iterator, self.seeds = iterator, seeds
    self._steps = tf.function(self._train_steps, autograph=False)
    self._steps._omit_frequent_tracing_warning = True  # one per child

  def run(self, start, n):
    return self._steps(self.iterator, tf.constant(self.seeds[start:start + n]))

  def _train_steps(self, it, chunk_seeds):
    def step(i):
      images, labels = next(it)
      return self.strategy.run(self.replica_step,
                               args=(images, labels, chunk_seeds[i]))
    return self._loop(tf.shape(chunk_seeds)[0], step)


class _Evaluation(_ChildGraphs):
  """A child's evaluation: [loss sum, correct, examples] over the
  evaluation split (padding rows have label -1 and count for nothing)."""

  def in_memory(self, data):
    """Over the in-memory images: one traced loop over every batch."""
    n = len(data)
    batches = -(-n // self.batch_size)
    rows = np.full(batches * self.batch_size, -1, np.int32)
    rows[:n] = np.arange(n)
    rows = tf.constant(rows.reshape(batches, self.batch_size))
    evaluate = tf.function(self._evaluate_all, autograph=False)
    evaluate._omit_frequent_tracing_warning = True  # one per child
    totals = np.zeros(3)
    totals += evaluate(data.images, data.labels, rows).numpy()
    return totals

  def streamed(self, padded):
    """Over the padded, distributed evaluation stream: a call per batch."""
    eval_step = tf.function(self._evaluate_batch,
                            input_signature=[padded.element_spec],
                            autograph=False)
    eval_step._omit_frequent_tracing_warning = True  # one per child
    totals = np.zeros(3)
    for batch in padded:
      totals += [float(v) for v in eval_step(batch)]
    return totals

  def _evaluate_all(self, images, labels, all_rows):
    def body(i, acc):
      per = self._reduce(self.strategy.run(
          self._replica_gather, args=(images, labels, all_rows[i])))
      return i + 1, acc + tf.stack(per)
    return tf.while_loop(lambda i, acc: i < tf.shape(all_rows)[0], body,
                         (tf.constant(0), tf.zeros([3])))[1]

  def _evaluate_batch(self, batch):
    return self._reduce(self.strategy.run(self._replica_eval, args=batch))

  def _reduce(self, per):
    return [self._sum(v) for v in per]

  def _replica_gather(self, images, labels, batch_rows):
    batch_rows = self._replica_rows(batch_rows)
    valid = batch_rows >= 0
    safe = tf.maximum(batch_rows, 0)
    return self._replica_eval(tf.gather(images, safe),
                              tf.where(valid, tf.gather(labels, safe), -1))

  def _replica_eval(self, images, labels):
    outputs = tf.cast(self.model(tf.cast(images, tf.float32),
                                 training=False), tf.float32)
    labels = tf.cast(labels, tf.int32)
    valid = labels >= 0
    per_example = _per_example_loss(tf.maximum(labels, 0), outputs,
                                    self.num_classes, self.from_logits, 0.0)
    correct = tf.equal(tf.argmax(outputs, -1, output_type=tf.int32), labels)
    mask = tf.cast(valid, tf.float32)
    return (tf.reduce_sum(tf.where(valid, per_example, 0.0)),
            tf.reduce_sum(tf.cast(correct, tf.float32) * mask),
            tf.reduce_sum(mask))
