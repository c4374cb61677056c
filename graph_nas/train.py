"""Train one child network for a short budget and score it.

`train_child(model_fn, config, settings)` builds a Keras model with
``model_fn(config, input_shape=..., num_classes=..., **settings.model_kwargs)``
(pass `graph_nas.child.build_child`; this module does not import it), trains
it on a tfds dataset (`graph_nas.data`) for an epoch or step budget under a
``tf.distribute`` strategy, evaluates it on the held-out validation part and
returns a `TrainResult`.

Failures of the child are results, not exceptions: a `model_fn` that raises,
a non-finite training or validation loss, or running out of memory gives
``status="failed"`` with the reason; the caller decides what reward a failed
child gets. Mistakes of the caller (unknown strategy, bad settings, a missing
dataset) still raise `GraphNasError`.

Two trainers share the settings:

- ``trainer="fast"`` (default): a lean custom train step (one
  ``tf.function`` over a loop of ``steps_per_execution`` steps, an optional
  XLA-compiled inner step), a fused optimizer (one op per variable, the
  Keras update rules), one evaluation trace with static padded batches, the
  input iterator reused across children. Its per-child fixed cost is what a
  search pays thousands of times: 30-55% below model.fit's on 2 CPU cores,
  with at least its throughput; see benchmarks/README_train.md.
- ``trainer="fit"``: ``model.compile`` + ``model.fit`` + ``model.evaluate``
  with ``keras.callbacks.TerminateOnNaN``: the reference.

Reward: validation accuracy, or, with ``target_flops``, MnasNet's
multi-objective reward ``accuracy * (flops / target_flops) ** w`` with
``w = reward_alpha`` if ``flops <= target_flops`` else ``reward_beta``
(MnasNet's soft constraint: alpha = beta = -0.07).
"""

import collections
import contextlib
import dataclasses
import gc
import logging
import math
import threading
import time
import traceback

import numpy as np
import tensorflow as tf
import keras

from graph_nas import data as data_lib
from graph_nas.errors import GraphNasError

log = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "tpu")
TRAINERS = ("fast", "fit")
OPTIMIZERS = ("sgd", "adam")
MIXED_PRECISION = (None, "mixed_float16", "mixed_bfloat16")
MNAS_EXPONENT = -0.07


@dataclasses.dataclass(frozen=True)
class TrainSettings:
  """How children are trained and scored (shared by all children of a search).

  Attributes:
    dataset: "cifar10" or "imagenet2012".
    data_dir: tfds data dir (default $TFDS_DATA_DIR, else tfds' default).
    download: let tfds download a missing dataset.
    image_size: ImageNet image side (default 224).
    train_examples: train on the first N training examples only.
    eval_examples: evaluate on the first N examples of the evaluation split.
    eval_role: "validation" (the held-out reward split) or "test".
    batch_size: global batch size (split over replicas).
    epochs: training budget in epochs (of `train_examples` if set); may be
      fractional.
    steps: training budget in steps; overrides `epochs` when set.
    optimizer: "sgd" (momentum, Nesterov) or "adam".
    learning_rate: peak learning rate; default 0.1 * batch_size / 128 for SGD,
      1e-3 for Adam.
    momentum: SGD momentum.
    weight_decay: decoupled weight decay (Keras optimizers' `weight_decay`).
    warmup_fraction: share of the steps with linear warm-up from 0; a cosine
      decay to 0 follows.
    label_smoothing: label smoothing of the training loss.
    clipnorm: clip each gradient to this norm (None: no clipping).
    strategy: "default" (CPU or one GPU), "mirrored" (all local GPUs, else
      all logical CPUs) or "tpu".
    tpu: TPU address for TPUClusterResolver ("" or "local" for a local TPU VM).
    mixed_precision: None, "mixed_float16" or "mixed_bfloat16".
    trainer: "fast" or "fit".
    steps_per_execution: steps run per call into TensorFlow.
    jit_compile: XLA-compile the train step (helps on GPU/TPU, not on CPU).
    fused_optimizer: fast trainer: update each variable with one fused op
      (same rules as the Keras optimizer, cheaper to trace); not used with
      mixed_float16 (loss scaling) or on TPU.
    from_logits: whether the model outputs logits; None: guessed from the last
      layer (a softmax activation means probabilities).
    target_flops: enables the MnasNet reward (needs a `flops_fn`).
    reward_alpha: MnasNet exponent when flops <= target_flops.
    reward_beta: MnasNet exponent when flops > target_flops.
    seed: seed of data shuffling and augmentation.
    model_kwargs: extra keyword arguments of `model_fn` (e.g. bn_momentum).
  """
  dataset: str = "cifar10"
  data_dir: str | None = None
  download: bool = False
  image_size: int | None = None
  train_examples: int | None = None
  eval_examples: int | None = None
  eval_role: str = "validation"
  batch_size: int = 128
  epochs: float = 1.0
  steps: int | None = None
  optimizer: str = "sgd"
  learning_rate: float | None = None
  momentum: float = 0.9
  weight_decay: float | None = 5e-4
  warmup_fraction: float = 0.05
  label_smoothing: float = 0.0
  clipnorm: float | None = None
  strategy: str = "default"
  tpu: str | None = None
  mixed_precision: str | None = None
  trainer: str = "fast"
  steps_per_execution: int = 8
  jit_compile: bool = False
  fused_optimizer: bool = True
  from_logits: bool | None = None
  target_flops: float | None = None
  reward_alpha: float = MNAS_EXPONENT
  reward_beta: float = MNAS_EXPONENT
  seed: int = 0
  model_kwargs: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class TrainResult:
  """The outcome of training one child.

  Attributes:
    status: "ok" or "failed".
    reason: why it failed ("" when ok).
    reward: validation accuracy, or the MnasNet reward with a FLOPs target;
      None when failed.
    metrics: train_loss, train_accuracy (means over the last epoch, or over
      all steps of a budget under one epoch), val_loss, val_accuracy,
      val_examples (fast trainer), params, flops (with a flops_fn), steps,
      examples, trainer, optimizer, replicas, and wall times in seconds:
      data_s (input pipelines), build_s (model_fn, optimizer, iterator),
      first_step_s (the first call into TensorFlow, with its trace: one step,
      or steps_per_execution steps with trainer="fit"), train_s (the
      remaining, steady steps), eval_s (with its trace), flops_s, total_s;
      images_per_s is the steady training throughput.
    details: the traceback of a failure.
  """
  status: str
  reason: str = ""
  reward: float | None = None
  metrics: dict = dataclasses.field(default_factory=dict)
  details: str = ""

  @property
  def ok(self):
    return self.status == "ok"

  def to_dict(self):
    """A JSON-able dict of the result."""
    return dataclasses.asdict(self)


class _ChildFailure(Exception):
  """A child-specific failure detected by the trainer (e.g. a NaN loss)."""


def mnas_reward(accuracy, flops, target_flops, *, alpha=MNAS_EXPONENT,
                beta=MNAS_EXPONENT):
  """MnasNet's reward: accuracy * (flops / target)^w, w = alpha or beta.

  w is `alpha` when flops <= target_flops, else `beta` (MnasNet, Tan et al.
  2018, eq. 2; alpha = beta = -0.07 is its soft constraint).
  """
  if flops is None or not target_flops or target_flops <= 0 or flops <= 0:
    raise GraphNasError(f"MnasNet reward needs positive flops and target "
                        f"(flops={flops}, target_flops={target_flops})")
  w = alpha if flops <= target_flops else beta
  return float(accuracy) * (float(flops) / float(target_flops)) ** w


# --------------------------------------------------------------------------
# Strategies.

_STRATEGY_LOCK = threading.Lock()
_STRATEGIES = {}


def get_strategy(name="default", *, tpu=None):
  """The `tf.distribute.Strategy` called `name`, created once per process.

  Args:
    name: "default" (the default strategy: CPU, or the one GPU TF places ops
      on), "mirrored" (MirroredStrategy over all local GPUs, or over all
      logical CPU devices when there is no GPU) or "tpu".
    tpu: the TPU address (grpc://..., a TPU name, or "local").
  """
  if isinstance(name, tf.distribute.Strategy):
    return name
  if name not in STRATEGIES:
    raise GraphNasError(f"unknown strategy '{name}'; one of "
                        f"{', '.join(STRATEGIES)}")
  key = (name, tpu)
  with _STRATEGY_LOCK:
    if key in _STRATEGIES:
      return _STRATEGIES[key]
    if name == "default":
      strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
      devices = [d.name for d in tf.config.list_logical_devices("GPU")]
      if not devices:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
      strategy = tf.distribute.MirroredStrategy(devices)
    else:
      try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu or "")
        if tpu not in (None, "", "local"):
          tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
      except Exception as e:  # pylint: disable=broad-except
        raise GraphNasError(f"cannot connect to TPU '{tpu}': {e}") from e
    _STRATEGIES[key] = strategy
    return strategy


# --------------------------------------------------------------------------
# Pieces shared by both trainers.


def _check_settings(s):
  if s.trainer not in TRAINERS:
    raise GraphNasError(f"unknown trainer '{s.trainer}'; one of "
                        f"{', '.join(TRAINERS)}")
  if s.optimizer not in OPTIMIZERS:
    raise GraphNasError(f"unknown optimizer '{s.optimizer}'; one of "
                        f"{', '.join(OPTIMIZERS)}")
  if s.mixed_precision not in MIXED_PRECISION:
    raise GraphNasError(f"unknown mixed precision '{s.mixed_precision}'; "
                        "one of mixed_float16, mixed_bfloat16")
  if s.eval_role not in ("validation", "test"):
    raise GraphNasError(f"eval_role must be validation or test, not "
                        f"'{s.eval_role}'")
  if s.steps is not None and int(s.steps) < 1:
    raise GraphNasError(f"steps={s.steps} must be positive")
  if s.steps is None and not s.epochs > 0:
    raise GraphNasError(f"epochs={s.epochs} must be positive")
  if int(s.steps_per_execution) < 1:
    raise GraphNasError("steps_per_execution must be positive")
  if not 0 <= s.warmup_fraction < 1:
    raise GraphNasError("warmup_fraction must be in [0, 1)")
  if not 0 <= s.label_smoothing < 1:
    raise GraphNasError("label_smoothing must be in [0, 1)")


@contextlib.contextmanager
def _dtype_policy(name):
  """Sets Keras' global dtype policy while the child is built."""
  if name is None:
    yield
    return
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(name)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def _outputs_probabilities(model):
  """Whether the model ends in a softmax (else its outputs are logits)."""
  layer = model.layers[-1] if model.layers else None
  if isinstance(layer, keras.layers.Softmax):
    return True
  activation = getattr(layer, "activation", None)
  return getattr(activation, "__name__", "") == "softmax"


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


def _schedule(s, total_steps):
  """Linear warm-up from 0, then cosine decay to 0, over the budget."""
  lr = s.learning_rate
  if lr is None:
    lr = 0.1 * s.batch_size / 128 if s.optimizer == "sgd" else 1e-3
  warmup = int(round(s.warmup_fraction * total_steps))
  return keras.optimizers.schedules.CosineDecay(
      initial_learning_rate=0.0 if warmup else lr,
      decay_steps=max(1, total_steps - warmup), alpha=0.0,
      warmup_target=lr if warmup else None, warmup_steps=warmup)


def _make_optimizer(s, total_steps):
  schedule = _schedule(s, total_steps)
  common = dict(learning_rate=schedule, weight_decay=s.weight_decay or None,
                clipnorm=s.clipnorm)
  if s.optimizer == "sgd":
    optimizer = keras.optimizers.SGD(momentum=s.momentum, nesterov=True,
                                     **common)
  else:
    optimizer = keras.optimizers.Adam(**common)
  if s.mixed_precision == "mixed_float16":
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer


class _FusedOptimizer:
  """SGD (Nesterov momentum) or Adam as one fused TF op per variable.

  The same update rules as the Keras optimizers `_make_optimizer` builds
  (decoupled weight decay, per-gradient clipnorm, the same schedule), but
  `ResourceApplyKerasMomentum` / `ResourceApplyAdam` instead of a dozen ops
  per variable: the train step traces and optimises faster (per-child fixed
  cost, see benchmarks/README_train.md). Under MirroredStrategy the gradients
  are all-reduced first and every replica updates its own copy.
  """

  def __init__(self, s, total_steps, variables):
    self.kind = s.optimizer
    self.schedule = _schedule(s, total_steps)
    self.weight_decay = s.weight_decay or 0.0
    self.clipnorm = s.clipnorm
    self.momentum = s.momentum
    self.iterations = tf.Variable(
        0, dtype=tf.int64, trainable=False, name="iterations",
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    count = 1 if self.kind == "sgd" else 2
    self.slots = [[tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False)
                   for _ in range(count)] for v in variables]

  def scale_loss(self, loss):
    return loss

  def apply(self, grads, variables):
    """Updates `variables`; call in replica context."""
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
      grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    lr = tf.cast(self.schedule(self.iterations), tf.float32)
    step = tf.cast(self.iterations + 1, tf.float32)
    for grad, var, slots in zip(grads, variables, self.slots):
      if grad is None:
        continue
      if self.clipnorm:
        grad = tf.clip_by_norm(grad, self.clipnorm)
      if self.weight_decay:
        tf.raw_ops.AssignSubVariableOp(
            resource=var.handle,
            value=tf.raw_ops.ReadVariableOp(resource=var.handle,
                                            dtype=var.dtype) *
            (lr * self.weight_decay))
      if self.kind == "sgd":
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=var.handle, accum=slots[0].handle, lr=lr, grad=grad,
            momentum=self.momentum, use_nesterov=True)
      else:
        tf.raw_ops.ResourceApplyAdam(
            var=var.handle, m=slots[0].handle, v=slots[1].handle,
            beta1_power=tf.pow(0.9, step), beta2_power=tf.pow(0.999, step),
            lr=lr, beta1=0.9, beta2=0.999, epsilon=1e-7, grad=grad)
    self.iterations.assign_add(1)


def _fusable(s, strategy):
  """Whether the fast trainer may use `_FusedOptimizer`."""
  if not s.fused_optimizer or s.mixed_precision == "mixed_float16":
    return False  # float16 needs the Keras LossScaleOptimizer
  return isinstance(strategy, tf.distribute.MirroredStrategy) or (
      strategy is tf.distribute.get_strategy() and
      not tf.distribute.has_strategy())


def _budget(s, steps_per_epoch):
  if s.steps is not None:
    return int(s.steps)
  if steps_per_epoch is None:
    raise GraphNasError("the training split's size is unknown: give a step "
                        "budget (steps=...)")
  return max(1, int(round(s.epochs * steps_per_epoch)))


def _collect_garbage(strategy, failed):
  """Frees a finished child's memory now where it matters.

  Keras models hold reference cycles, so a child's variables live until
  Python's cycle collector runs. A full collection costs about 0.5 s on 2
  CPU cores (benchmarks/README_train.md); on CPU it is left to Python's own
  schedule. After a failure (out of memory, say) and on accelerators, where
  device memory must be back before the next child, it runs now.
  """
  accelerated = isinstance(strategy, tf.distribute.TPUStrategy) or bool(
      tf.config.list_logical_devices("GPU"))
  if failed or accelerated:
    gc.collect()


def _failed(reason, metrics, exc=None):
  details = traceback.format_exc() if exc is not None else ""
  log.info("child failed: %s", reason)
  return TrainResult(status="failed", reason=reason, metrics=metrics,
                     details=details)


def _describe(e):
  text = str(e).strip().splitlines()
  first = text[0] if text else ""
  return f"{type(e).__name__}: {first}"[:500]


# --------------------------------------------------------------------------
# The fast trainer.

_ITER_LOCK = threading.Lock()
# (id(dataset), id(strategy)) -> (dataset, strategy, iterator), LRU order;
# each holds a shuffle buffer and prefetched batches.
_ITERATORS = collections.OrderedDict()
MAX_CACHED_ITERATORS = 4
# (id(dataset), batch, id(strategy)) -> (dataset, strategy, distributed).
_PADDED = collections.OrderedDict()


def _lru_get(cache, key, make, limit):
  """cache[key], made by make() when missing; keeps the `limit` newest."""
  if key in cache:
    cache.move_to_end(key)
  else:
    cache[key] = make()
    while len(cache) > limit:
      cache.popitem(last=False)
  return cache[key]


def _train_iterator(dataset, strategy):
  """A distributed iterator over `dataset` repeated, shared across children.

  Reusing it keeps the shuffle buffer and prefetched batches warm; a child
  simply continues the endless shuffled stream where the previous one left.
  """
  def make():
    dist = strategy.experimental_distribute_dataset(dataset.repeat())
    return (dataset, strategy, iter(dist))

  with _ITER_LOCK:
    return _lru_get(_ITERATORS, (id(dataset), id(strategy)), make,
                    MAX_CACHED_ITERATORS)[2]


def _padded_eval(dataset, batch_size, strategy):
  """`dataset` distributed, every batch padded to `batch_size` (label -1).

  Static shapes: the evaluation step traces once, and TPUs accept it.
  """
  @tf.autograph.experimental.do_not_convert
  def pad(images, labels):
    n = tf.shape(labels)[0]
    images = tf.pad(images, [[0, batch_size - n], [0, 0], [0, 0], [0, 0]])
    labels = tf.pad(labels, [[0, batch_size - n]], constant_values=-1)
    images.set_shape([batch_size] + images.shape[1:].as_list())
    labels.set_shape([batch_size])
    return images, labels

  def make():
    padded = strategy.experimental_distribute_dataset(dataset.map(pad))
    return (dataset, strategy, padded)

  with _ITER_LOCK:
    return _lru_get(_PADDED, (id(dataset), batch_size, id(strategy)), make,
                    2 * MAX_CACHED_ITERATORS)[2]


def clear_caches():
  """Forgets the cached iterators, padded datasets and strategies."""
  with _ITER_LOCK:
    _ITERATORS.clear()
    _PADDED.clear()
  with _STRATEGY_LOCK:
    _STRATEGIES.clear()


def _fast_run(model, optimizer, strategy, train_ds, eval_ds, total_steps,
              steps_per_epoch, s, num_classes, from_logits, times):
  """Trains and evaluates with a custom step; returns the metrics."""
  replicas = strategy.num_replicas_in_sync
  global_batch = float(s.batch_size)
  smoothing = float(s.label_smoothing)
  trainable = model.trainable_variables

  def replica_train(images, labels):
    with tf.GradientTape() as tape:
      outputs = tf.cast(model(images, training=True), tf.float32)
      per_example = _per_example_loss(labels, outputs, num_classes,
                                      from_logits, smoothing)
      loss = tf.reduce_sum(per_example) / global_batch
      if model.losses:
        loss += tf.add_n(model.losses) / replicas
      scaled = optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, trainable)
    optimizer.apply(grads, trainable)
    correct = tf.equal(tf.argmax(outputs, -1, output_type=tf.int32),
                       tf.cast(labels, tf.int32))
    return (tf.reduce_sum(per_example),
            tf.reduce_sum(tf.cast(correct, tf.float32)))

  if s.jit_compile:
    replica_train = tf.function(replica_train, jit_compile=True)

  sum_ = tf.distribute.ReduceOp.SUM

  @tf.function(autograph=False)
  def train_steps(iterator, n):
    """n train steps; the summed loss and correct predictions."""
    def body(i, loss_sum, correct):
      per_replica = strategy.run(replica_train, args=next(iterator))
      return (i + 1,
              loss_sum + strategy.reduce(sum_, per_replica[0], axis=None),
              correct + strategy.reduce(sum_, per_replica[1], axis=None))

    _, loss_sum, correct = tf.while_loop(
        lambda i, loss_sum, correct: i < n, body,
        (tf.constant(0), tf.constant(0.0), tf.constant(0.0)))
    return loss_sum, correct

  def replica_eval(images, labels):
    outputs = tf.cast(model(images, training=False), tf.float32)
    labels = tf.cast(labels, tf.int32)
    valid = labels >= 0
    per_example = _per_example_loss(tf.maximum(labels, 0), outputs,
                                    num_classes, from_logits, 0.0)
    correct = tf.equal(tf.argmax(outputs, -1, output_type=tf.int32), labels)
    mask = tf.cast(valid, tf.float32)
    return (tf.reduce_sum(tf.where(valid, per_example, 0.0)),
            tf.reduce_sum(tf.cast(correct, tf.float32) * mask),
            tf.reduce_sum(mask))

  dist_eval = _padded_eval(eval_ds, s.batch_size, strategy)

  @tf.function(input_signature=[dist_eval.element_spec], autograph=False)
  def eval_step(batch):
    per_replica = strategy.run(replica_eval, args=batch)
    return [strategy.reduce(sum_, v, axis=None) for v in per_replica]

  # Each child has its own functions, traced once each: not a retracing.
  train_steps._omit_frequent_tracing_warning = True
  eval_step._omit_frequent_tracing_warning = True

  iterator = _train_iterator(train_ds, strategy)
  times["build_s"] += time.perf_counter() - times["_t"]

  # Training: the first call runs one step (trace + first step), the rest
  # go in chunks of steps_per_execution that never cross an epoch boundary.
  epoch_len = steps_per_epoch or total_steps
  chunk = int(s.steps_per_execution)
  done, epoch_loss, epoch_correct, epoch_steps = 0, 0.0, 0.0, 0
  t0 = time.perf_counter()
  while done < total_steps:
    if done == 0:
      n = 1
    else:
      n = min(chunk, total_steps - done, epoch_len - done % epoch_len)
    loss_sum, correct = train_steps(iterator, tf.constant(n, tf.int32))
    loss_sum = float(loss_sum)
    if not math.isfinite(loss_sum):
      raise _ChildFailure(f"non-finite training loss ({loss_sum}) within "
                          f"steps {done + 1}..{done + n}")
    if done % epoch_len == 0:
      epoch_loss, epoch_correct, epoch_steps = 0.0, 0.0, 0
    epoch_loss += loss_sum
    epoch_correct += float(correct)
    epoch_steps += n
    done += n
    if done == 1:
      times["first_step_s"] = time.perf_counter() - t0
      t0 = time.perf_counter()
  times["train_s"] = time.perf_counter() - t0 if total_steps > 1 else 0.0
  examples = epoch_steps * s.batch_size
  metrics = {"train_loss": epoch_loss / examples,
             "train_accuracy": epoch_correct / examples}

  t0 = time.perf_counter()
  totals = np.zeros(3)
  for batch in dist_eval:
    totals += [float(v) for v in eval_step(batch)]
  times["eval_s"] = time.perf_counter() - t0
  if totals[2] == 0:
    raise GraphNasError("the evaluation split is empty")
  metrics["val_loss"] = float(totals[0] / totals[2])
  metrics["val_accuracy"] = float(totals[1] / totals[2])
  metrics["val_examples"] = int(totals[2])
  return metrics


# --------------------------------------------------------------------------
# The model.fit trainer.


class _Timer(keras.callbacks.Callback):
  """Times the first train call (with its trace) and the rest, over fits."""

  def __init__(self):
    super().__init__()
    self.t_begin = self.t_first = self.t_end = None

  def on_train_begin(self, logs=None):
    if self.t_begin is None:
      self.t_begin = time.perf_counter()

  def on_train_batch_end(self, batch, logs=None):
    if self.t_first is None:
      self.t_first = time.perf_counter()

  def on_train_end(self, logs=None):
    self.t_end = time.perf_counter()


class _NanGuard(keras.callbacks.TerminateOnNaN):
  """TerminateOnNaN that remembers the batch with the non-finite loss."""

  def __init__(self):
    super().__init__()
    self.bad = None

  def on_batch_end(self, batch, logs=None):
    loss = (logs or {}).get("loss")
    if loss is not None and not np.isfinite(float(loss)) and self.bad is None:
      self.bad = (batch, float(loss))
    super().on_batch_end(batch, logs)


def _fit_run(model, optimizer, strategy, train_ds, eval_ds, total_steps,
             steps_per_epoch, s, num_classes, from_logits, times):
  """Trains with model.fit and evaluates with model.evaluate."""
  del strategy  # compile() picks up the strategy of the enclosing scope.
  smoothing = float(s.label_smoothing)

  def loss_fn(labels, outputs):
    return _per_example_loss(labels, tf.cast(outputs, tf.float32),
                             num_classes, from_logits, smoothing)

  model.compile(optimizer=optimizer, loss=loss_fn,
                metrics=["sparse_categorical_accuracy"],
                steps_per_execution=int(s.steps_per_execution),
                jit_compile=bool(s.jit_compile))
  times["build_s"] += time.perf_counter() - times["_t"]
  # Whole epochs, then the rest of the budget as one short epoch (a second
  # fit() reuses the traced train function).
  epoch_len = min(steps_per_epoch or total_steps, total_steps)
  full, rest = divmod(total_steps, epoch_len)
  timer, guard = _Timer(), _NanGuard()
  history = None
  for epochs, steps in ((full, epoch_len), (1 if rest else 0, rest)):
    if epochs and guard.bad is None:
      history = model.fit(train_ds.repeat(), epochs=epochs,
                          steps_per_epoch=steps, verbose=0, shuffle=False,
                          callbacks=[guard, timer])
  if guard.bad is not None:
    raise _ChildFailure(f"non-finite training loss ({guard.bad[1]}) at "
                        f"batch {guard.bad[0] + 1} of an epoch")
  times["first_step_s"] = timer.t_first - timer.t_begin
  times["train_s"] = timer.t_end - timer.t_first
  times["_first_steps"] = min(int(s.steps_per_execution), epoch_len)
  metrics = {"train_loss": float(history.history["loss"][-1]),
             "train_accuracy": float(
                 history.history["sparse_categorical_accuracy"][-1])}
  t0 = time.perf_counter()
  results = model.evaluate(eval_ds, verbose=0, return_dict=True)
  times["eval_s"] = time.perf_counter() - t0
  metrics["val_loss"] = float(results["loss"])
  metrics["val_accuracy"] = float(results["sparse_categorical_accuracy"])
  return metrics


# --------------------------------------------------------------------------
# Entry point.


def train_child(model_fn, config, settings=None, *, strategy=None,
                flops_fn=None, params_fn=None, **overrides):
  """Trains one child for the budget of `settings` and scores it.

  Args:
    model_fn: ``model_fn(config, input_shape=..., num_classes=...,
      **settings.model_kwargs) -> keras.Model`` (e.g. child.build_child).
    config: the architecture config (decoded walk) given to `model_fn`.
    settings: a `TrainSettings`; default `TrainSettings()`.
    strategy: a `tf.distribute.Strategy` to use instead of
      `settings.strategy`.
    flops_fn: ``flops_fn(model) -> float``; its value goes into the metrics
      and, with `settings.target_flops`, into the MnasNet reward.
    params_fn: ``params_fn(model) -> int``; default ``model.count_params()``.
    **overrides: fields of `TrainSettings` replacing those of `settings`.

  Returns:
    A `TrainResult`; ``status="failed"`` (with the reason) when the child
    could not be built, its loss became non-finite or it ran out of memory.

  Raises:
    GraphNasError: bad settings, an unknown strategy, a missing dataset.
  """
  s = settings if settings is not None else TrainSettings()
  if overrides:
    try:
      s = dataclasses.replace(s, **overrides)
    except TypeError as e:
      raise GraphNasError(f"unknown training setting: {e}") from e
  _check_settings(s)
  if s.target_flops is not None and flops_fn is None:
    raise GraphNasError("target_flops (the MnasNet reward) needs a flops_fn")
  t_start = time.perf_counter()
  strategy = get_strategy(strategy or s.strategy, tpu=s.tpu)
  info = data_lib.dataset_info(s.dataset, image_size=s.image_size)
  common = dict(data_dir=s.data_dir, image_size=s.image_size, seed=s.seed,
                download=s.download)
  train_ds = data_lib.load_dataset(s.dataset, "train", s.batch_size,
                                   train_examples=s.train_examples, **common)
  eval_ds = data_lib.load_dataset(s.dataset, s.eval_role, s.batch_size,
                                  eval_examples=s.eval_examples, **common)
  steps_per_epoch = data_lib.num_batches(train_ds)
  total_steps = _budget(s, steps_per_epoch)
  replicas = strategy.num_replicas_in_sync
  metrics = {"steps": total_steps, "examples": total_steps * s.batch_size,
             "trainer": s.trainer, "replicas": replicas}
  times = {"data_s": time.perf_counter() - t_start, "build_s": 0.0,
           "first_step_s": 0.0, "train_s": 0.0, "eval_s": 0.0}

  def finish(result):
    for k, v in times.items():
      if not k.startswith("_"):
        metrics[k] = v
    metrics["total_s"] = time.perf_counter() - t_start
    first = times.get("_first_steps", 1)
    if total_steps > first and times["train_s"] > 0:
      metrics["images_per_s"] = ((total_steps - first) * s.batch_size /
                                 times["train_s"])
    result.metrics = metrics
    return result

  times["_t"] = time.perf_counter()
  model = _build(model_fn, config, s, info, strategy, metrics)
  if isinstance(model, TrainResult):
    result = model
  else:
    result = _train_and_score(model, s, strategy, train_ds, eval_ds,
                              total_steps, steps_per_epoch, info, metrics,
                              times, flops_fn, params_fn)
  del model
  times.pop("_t", None)
  _collect_garbage(strategy, not result.ok)
  return finish(result)


def _build(model_fn, config, s, info, strategy, metrics):
  """The child's model, or a failed TrainResult."""
  try:
    with _dtype_policy(s.mixed_precision), strategy.scope():
      model = model_fn(config, input_shape=info.input_shape,
                       num_classes=info.num_classes, **s.model_kwargs)
      if not isinstance(model, keras.Model):
        raise TypeError(f"model_fn returned {type(model).__name__}, not a "
                        "keras.Model")
      if not model.built:
        model.build((None,) + tuple(info.input_shape))
    return model
  except tf.errors.ResourceExhaustedError as e:
    return _failed(f"out of memory while building: {_describe(e)}", metrics,
                   e)
  except Exception as e:  # pylint: disable=broad-except
    return _failed(f"model_fn raised {_describe(e)}", metrics, e)


def _train_and_score(model, s, strategy, train_ds, eval_ds, total_steps,
                     steps_per_epoch, info, metrics, times, flops_fn,
                     params_fn):
  """Trains and evaluates a built child; a TrainResult, failed or ok."""
  try:
    metrics["params"] = int(params_fn(model) if params_fn
                            else model.count_params())
    from_logits = (s.from_logits if s.from_logits is not None
                   else not _outputs_probabilities(model))
    with strategy.scope():
      if s.trainer == "fast" and _fusable(s, strategy):
        optimizer = _FusedOptimizer(s, total_steps, model.trainable_variables)
      else:
        optimizer = _make_optimizer(s, total_steps)
        optimizer.build(model.trainable_variables)
    metrics["optimizer"] = type(optimizer).__name__
    run = _fast_run if s.trainer == "fast" else _fit_run
    metrics.update(run(model, optimizer, strategy, train_ds, eval_ds,
                       total_steps, steps_per_epoch, s, info.num_classes,
                       from_logits, times))
    if not math.isfinite(metrics["val_loss"]):
      raise _ChildFailure(f"non-finite validation loss "
                          f"({metrics['val_loss']})")
    reward = float(metrics["val_accuracy"])
    if flops_fn is not None:
      t0 = time.perf_counter()
      metrics["flops"] = float(flops_fn(model))
      times["flops_s"] = time.perf_counter() - t0
    if s.target_flops is not None:
      reward = mnas_reward(reward, metrics["flops"], s.target_flops,
                           alpha=s.reward_alpha, beta=s.reward_beta)
    return TrainResult(status="ok", reward=reward)
  except GraphNasError:
    raise
  except _ChildFailure as e:
    return _failed(str(e), metrics)
  except tf.errors.ResourceExhaustedError as e:
    return _failed(f"out of memory: {_describe(e)}", metrics, e)
  except Exception as e:  # pylint: disable=broad-except
    return _failed(f"training raised {_describe(e)}", metrics, e)
