"""Zero-cost proxies: how promising an untrained child looks.

Plain functions of a built Keras child (graph_nas.child.build_child or any
functional model of the same layers) and, for NASWOT, one batch of raw
images. Higher is more promising for every one of them. They score a
child without training it: one forward (and for synflow one backward)
pass, a few tenths of a second on a CPU for a child of
protos/cifar_cpu.textproto, where a training costs tens of seconds.

- :func:`synflow` (Tanaka et al. 2020, "Pruning neural networks without
  any data by iteratively conserving synaptic flow"; as a NAS proxy
  Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS"):
  every weight replaced by its absolute value, an all-ones input image
  (the value 1 after the model's own normalisation), R = the sum of the
  logits, score = the sum over the kernels of conv, depthwise conv and
  dense layers of |w * dR/dw|. BatchNormalization is bypassed, as the
  reference code's `synflow` does (github.com/SamsungLabs/zero-cost-nas,
  measure "synflow", bn=False: BN forward replaced by the identity): here
  in inference mode with moving mean 0, moving variance 1 - epsilon,
  scale 1 and offset 0, which is the identity exactly. Dropout is off.
  The model's variables are not changed (the values are set in a
  keras.StatelessScope). Computed in float32;
  when that overflows, again in float64 (the reference runs in float64).
  Returns the natural log of the score (the score itself spans tens of
  orders of magnitude).
- :func:`naswot` (Mellor et al. 2021, "Neural Architecture Search without
  Training", the v2 / ICML score): for each image of the batch a binary
  code, which units of the model's ReLU-family activation layers are
  active (their input > 0: ReLU, swish and the like gate at 0); the kernel
  K[i, j] = c_i . c_j + (1 - c_i) . (1 - c_j) (units where images i and j
  agree), score = log|det K| (numpy's slogdet). As in the reference code
  (github.com/BayesWatch/nas-without-training) the network runs in
  training mode, BatchNormalization on the batch's statistics (its moving
  statistics left unchanged). -inf when K is singular (two images
  with the same code: a network that cannot tell them apart).
- :func:`params` (the weights of the model, as
  graph_nas.child.count_params) and :func:`flops` (multiply-adds of one
  image, graph_nas.child.estimate_cost of the config: no Keras build):
  reference scores, the size of the child. Rankings by a zero-cost proxy
  are often not much better than by size (Abdelfattah et al. 2021;
  benchmarks/results/proxy_rank/proxy_rank.md for this package's children).

Seeding is the caller's: the weights are those of the model given (build
it after keras.utils.set_random_seed, as graph_nas.child.trainer's
`ChildTrainer.build` does), the batch is the one given.
"""

import math
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from graph_nas.child import cost

# Activations that gate at 0 (active: input > 0): NASWOT's binary codes.
RELU_FAMILY = frozenset({"relu", "relu6", "leaky_relu", "elu", "selu",
                         "gelu", "silu", "swish", "hard_silu",
                         "hard_swish", "mish", "softplus"})
_RELU_LAYERS = (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU)
_KERNEL_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                  keras.layers.Dense, keras.layers.Conv1D,
                  keras.layers.Conv3D, keras.layers.SeparableConv2D)


def _layers(model):
  """Every layer of the model, nested models opened."""
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      yield from _layers(layer)
    else:
      yield layer


def _kernels(model):
  return [w for layer in _layers(model) if isinstance(layer, _KERNEL_LAYERS)
          for w in layer.trainable_weights if "kernel" in w.path]


def _ones_input(model, dtype):
  """An input of one image whose value after the model's Normalization
  layer (when it has one) is 1 everywhere; else all ones."""
  shape = (1,) + tuple(int(d) for d in model.input_shape[1:])
  x = np.ones(shape, np.float64)
  for layer in _layers(model):
    if isinstance(layer, keras.layers.Normalization):
      mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), np.float64)
      std = np.maximum(np.sqrt(np.asarray(
          keras.ops.convert_to_numpy(layer.variance), np.float64)),
                       keras.config.epsilon())
      x = np.broadcast_to(mean + std, shape)
      break
    if isinstance(layer, _KERNEL_LAYERS):
      break  # a normalisation after the first weights is not the input's
  return tf.constant(x, dtype)


def _synflow_once(model, dtype):
  """The synflow score (not its log) of the model computed in `dtype`:
  the weights' absolute values and identity BNs are set in a
  keras.StatelessScope, so the model's variables are never changed."""
  kernels = _kernels(model)
  if not kernels:
    raise ValueError("synflow: the model has no conv or dense kernels")
  values = {id(w): tf.abs(w.value) for w in model.weights}
  for layer in _layers(model):
    if isinstance(layer, keras.layers.BatchNormalization):
      # Identity in inference mode: (x - 0) / sqrt(1 - eps + eps) * 1 + 0.
      for w, fill in ((layer.gamma, 1.0), (layer.beta, 0.0),
                      (layer.moving_mean, 0.0),
                      (layer.moving_variance, 1.0 - layer.epsilon)):
        if w is not None:
          values[id(w)] = tf.fill(w.shape, tf.constant(fill, w.dtype))
  watched = [values[id(k)] for k in kernels]
  x = _ones_input(model, dtype)
  with tf.GradientTape() as tape:
    tape.watch(watched)
    with keras.StatelessScope(
        state_mapping=[(w, values[id(w)]) for w in model.weights]):
      r = tf.reduce_sum(tf.cast(model(x, training=False), tf.float64))
  grads = tape.gradient(r, watched)
  terms = [tf.reduce_sum(tf.abs(tf.cast(k, tf.float64) *
                                tf.cast(g, tf.float64)))
           for k, g in zip(watched, grads) if g is not None]
  return float(tf.add_n(terms)) if terms else 0.0


def _float64_twin(model):
  """The same network in float64 (its config with every float32 dtype
  policy made float64), with the model's weights."""
  def widen(node):
    if isinstance(node, dict):
      if node.get("class_name") == "DTypePolicy":
        node = dict(node, config=dict(node.get("config", {}),
                                      name="float64"))
      return {k: widen(v) for k, v in node.items()}
    if isinstance(node, list):
      return [widen(v) for v in node]
    if node == "float32":
      return "float64"
    return node

  twin = model.__class__.from_config(widen(model.get_config()))
  twin.set_weights([np.asarray(w, np.float64) for w in model.get_weights()])
  return twin


def synflow(model: keras.Model) -> float:
  """log of the synaptic-flow score of the untrained model (module doc).
  The model's variables are left as they were."""
  score = _synflow_once(model, model.compute_dtype or "float32")
  if not (math.isfinite(score) and score < 1e300) and (
      model.compute_dtype != "float64"):
    twin = _float64_twin(model)
    score = _synflow_once(twin, "float64")
    del twin
  if not math.isfinite(score) or score <= 0:
    return -math.inf if score == 0 else math.nan
  return math.log(score)


def _activation_name(layer):
  fn = getattr(layer, "activation", None)
  return getattr(fn, "__name__", str(fn)).lower()


def relu_layers(model: keras.Model) -> list:
  """The model's ReLU-family activation layers (those NASWOT reads)."""
  out = []
  for layer in _layers(model):
    if isinstance(layer, _RELU_LAYERS) or (
        isinstance(layer, keras.layers.Activation) and
        _activation_name(layer) in RELU_FAMILY):
      out.append(layer)
  return out


def naswot(model: keras.Model, images) -> float:
  """log|det K| of the binary activation codes of a batch (module doc).

  images: a batch [B, H, W, C] as the model takes it (raw images for a
  child with preprocessing), B >= 2."""
  layers = relu_layers(model)
  if not layers:
    raise ValueError("naswot: the model has no ReLU-family activation "
                     "layers")
  images = tf.convert_to_tensor(images)
  b = int(images.shape[0])
  if b < 2:
    raise ValueError("naswot needs a batch of at least 2 images")
  probe = keras.Model(model.inputs, [layer.input for layer in layers])
  with keras.StatelessScope():  # BN's moving statistics left unchanged
    outs = probe(images, training=True)
  if not isinstance(outs, (list, tuple)):
    outs = [outs]
  k = np.zeros((b, b), np.float64)
  for a in outs:
    c = tf.cast(tf.reshape(a, (b, -1)) > 0, tf.float32)
    n = int(c.shape[1])
    # c c^T + (1 - c)(1 - c)^T = 2 c c^T - s_i - s_j + n  (s: active units)
    same = tf.matmul(c, c, transpose_b=True).numpy().astype(np.float64)
    s = np.diag(same).copy()
    k += 2.0 * same - s[:, None] - s[None, :] + n
  sign, logdet = np.linalg.slogdet(k)
  if sign <= 0:
    return -math.inf
  return float(logdet)


def params(model: keras.Model) -> float:
  """The model's number of weights (graph_nas.child.count_params)."""
  return float(cost.count_params(model))


def flops(config: Mapping[str, Any],
          input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10,
          **build_kwargs) -> float:
  """Multiply-adds of one image through build_child(config, ...), from the
  config alone (graph_nas.child.estimate_cost; build_kwargs: those of
  build_child, the ones that change no cost ignored)."""
  keep = {k: v for k, v in build_kwargs.items()
          if k in ("stem_filters", "stem_stride", "head_filters")}
  return float(cost.estimate_cost(config, input_shape, num_classes,
                                  **keep)["flops"])


def params_of_config(config: Mapping[str, Any],
                     input_shape: Sequence[int] = (32, 32, 3),
                     num_classes: int = 10, **build_kwargs) -> float:
  """:func:`params` of build_child(config, ...) without building it."""
  keep = {k: v for k, v in build_kwargs.items()
          if k in ("stem_filters", "stem_stride", "head_filters")}
  return float(cost.estimate_cost(config, input_shape, num_classes,
                                  **keep)["params"])
