"""A child's traced functions: its train steps and its evaluation.

What it holds: `ChildGraphs` (what a child's traced functions share: the
model, the strategy, the batch split over the replicas), `TrainSteps` with
`InMemorySteps` (batches gathered by index from the in-memory images,
traced once up front) and `StreamSteps` (batches from the trainer's
stream), `Evaluation` (the evaluation split's loss and accuracy) and the
per-example loss. graph_nas.child.trainer makes them, fresh for each
child; its docstring tells how the seed fixes what is random.
"""

import time

import numpy as np
import tensorflow as tf
import keras

from graph_nas.child import data as data_lib

_SUM = tf.distribute.ReduceOp.SUM


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


class ChildGraphs:
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


class TrainSteps(ChildGraphs):
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


class InMemorySteps(TrainSteps):
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


class StreamSteps(TrainSteps):
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


class Evaluation(ChildGraphs):
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
