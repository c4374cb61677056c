"""Child optimisers: the learning-rate schedule and a fused SGD / Adam.

`schedule(settings, total_steps)` is linear warm-up then cosine decay to 0.
`FusedOptimizer` applies Nesterov-momentum SGD or Adam (decoupled weight
decay, per-gradient clipnorm) as one TensorFlow op per variable: the train
step traces and optimises several times faster than with a Keras optimizer,
which is what a child's fixed cost is made of. `keras_optimizer` builds the
Keras optimizer with the same rules (for mixed float16 loss scaling, TPUs
and as the reference in tests).
"""

import keras
import tensorflow as tf


def schedule(s, total_steps):
  """Linear warm-up from 0, then cosine decay to 0, over the budget."""
  lr = s.peak_learning_rate()
  warmup = int(round(s.warmup_fraction * total_steps))
  return keras.optimizers.schedules.CosineDecay(
      initial_learning_rate=0.0 if warmup else lr,
      decay_steps=max(1, total_steps - warmup), alpha=0.0,
      warmup_target=lr if warmup else None, warmup_steps=warmup)


def keras_optimizer(s, total_steps):
  """The Keras optimizer with the rules of `FusedOptimizer`."""
  common = dict(learning_rate=schedule(s, total_steps),
                weight_decay=s.weight_decay or None, clipnorm=s.clipnorm)
  if s.optimizer == "sgd":
    optimizer = keras.optimizers.SGD(momentum=s.momentum, nesterov=True,
                                     **common)
  else:
    optimizer = keras.optimizers.Adam(**common)
  if s.mixed_precision == "mixed_float16":
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer


def fusable(s, strategy):
  """Whether `FusedOptimizer` may be used (not float16, not on TPU)."""
  if s.mixed_precision == "mixed_float16":
    return False  # float16 needs the Keras LossScaleOptimizer
  return not isinstance(strategy, tf.distribute.TPUStrategy)


class FusedOptimizer:
  """SGD (Nesterov momentum) or Adam as one fused TF op per variable.

  `ResourceApplyKerasMomentum` / `ResourceApplyAdam` implement the Keras
  update rules. Under MirroredStrategy the gradients are all-reduced first
  and every replica updates its own copy. Its interface is the part of a
  Keras optimizer the child trainer uses: `scale_loss`, `apply`,
  `iterations`.
  """

  def __init__(self, s, total_steps, variables):
    self.kind = s.optimizer
    self.schedule = schedule(s, total_steps)
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


class KerasOptimizerAdapter:
  """A built Keras optimizer behind FusedOptimizer's interface."""

  def __init__(self, optimizer, variables):
    self.optimizer = optimizer
    optimizer.build(variables)
    self.iterations = optimizer.iterations

  def scale_loss(self, loss):
    return self.optimizer.scale_loss(loss)

  def apply(self, grads, variables):
    self.optimizer.apply_gradients(zip(grads, variables))


def make(s, total_steps, variables, strategy):
  """The optimiser a child trains with (fused where possible)."""
  if fusable(s, strategy):
    return FusedOptimizer(s, total_steps, variables)
  return KerasOptimizerAdapter(keras_optimizer(s, total_steps), variables)
