"""MnasNet-like Keras child models (paper section 4.3; Tan et al. 2018).

A child is::

  stem:   3x3 conv (stride `stem_stride`) -> BN -> act
  layers: per searched layer, `repeats` MBConv blocks:
            [1x1 expand -> BN -> act]       (skipped at expand_ratio 1)
            kxk depthwise (stride) -> BN -> act
            [squeeze-and-excite]            (se_ratio > 0)
            1x1 project -> BN
            [+ input]                       (stride 1, in == out, skip allowed)
  head:   1x1 conv -> BN -> act -> global average pool -> dropout
          -> Dense(num_classes)  (logits)

The stem and head use ReLU (MnasNet); each layer uses its own activation.
Only built-in Keras layers are used, so a saved child reloads with a plain
``keras.models.load_model`` and no custom objects. Layer names are
deterministic, e.g. ``layer2_block1_expand_conv`` (layers and blocks count
from 1). With ``preprocessing=(mean, std)`` (per channel, 0..255 scale) the
model starts with a ``Normalization`` layer and takes raw images, as Keras
applications do; without it inputs are expected already normalised.

The search-space config (what ``graph_nas.space.SearchSpace.decode`` returns
for the image spaces in ``protos/``) is::

  {
    "stem_filters": 32,    # optional; see below
    "stem_stride": 1,      # optional
    "head_filters": 1280,  # optional
    "layers": [            # at least one layer
      {"kernel_size": 3, "filters": 24, "repeats": 2, "expand_ratio": 6,
       "se_ratio": 0.25, "activation": "swish", "stride": 2, "skip": True},
      ...
    ]
  }

Per-layer keys missing from a layer take :data:`LAYER_DEFAULTS` (``filters``
defaults to the layer's input width: the previous layer's filters, or the
stem's). A top-level value is taken from the builder argument when that is
given, else from the config, else from :data:`GLOBAL_DEFAULTS`. Other
top-level keys (hyperparameters a space may also decide) are ignored; an
unknown per-layer key is an error (a typo in a space file). Every invalid
value raises :class:`ChildConfigError` naming the layer and key before any
Keras layer is built.

Cost without training: :func:`count_params` and :func:`count_flops` (analytic
multiply-adds from the layer shapes of a built model), and
:func:`estimate_cost` (the same two numbers from the config alone, no Keras).
"""

import copy
import json
import math
import numbers
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np

from graph_nas.child.block_args import (ACTIVATIONS, BlockArgs, ChildConfigError, MAX_EXPAND_RATIO, MAX_FILTERS, MAX_REPEATS, MAX_STRIDE, check_activation, check_int, check_kernel_size, check_se_ratio, decode_block_strings, encode_block_strings)

__all__ = [
    "ACTIVATIONS", "BlockArgs", "ChildConfigError", "GLOBAL_DEFAULTS",
    "LAYER_DEFAULTS", "PRESETS", "blocks_from_config", "build_child",
    "build_from_blocks", "config_from_blocks", "count_flops", "count_params",
    "estimate_cost", "kwargs_from_task_params", "load_child", "mbconv_block",
    "preset", "save_child",
]

# Per-layer defaults. "filters": None means "the layer's input width".
LAYER_DEFAULTS = {
    "kernel_size": 3,
    "filters": None,
    "repeats": 1,
    "expand_ratio": 6,
    "se_ratio": 0.0,
    "activation": "relu",
    "stride": 1,
    "skip": True,
}

# Top-level defaults: a CIFAR-sized child (32x32 input, stem stride 1).
GLOBAL_DEFAULTS = {
    "stem_filters": 32,
    "stem_stride": 1,
    "head_filters": 1280,
}

BN_EPSILON = 1e-3  # MnasNet's

# EfficientNet / MnasNet initialisers (fan-out variance scaling).
CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out",
               "distribution": "truncated_normal"},
}
DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out",
               "distribution": "uniform"},
}


# ------------------------------------------------------------------ config
def _top_level(config, key, override):
  if override is not None:
    value, where = override, f"argument {key}"
  elif key in config:
    value, where = config[key], f"config key '{key}'"
  else:
    return GLOBAL_DEFAULTS[key]
  if key == "stem_stride":
    return check_int(value, where, 1, MAX_STRIDE)
  return check_int(value, where, 1, MAX_FILTERS)


def _check_config(config):
  if not isinstance(config, Mapping):
    raise ChildConfigError(f"a child config must be a dict, got "
                           f"{type(config).__name__}")
  layers = config.get("layers")
  if not isinstance(layers, (list, tuple)) or not layers:
    raise ChildConfigError("config key 'layers' must be a non-empty list of "
                           f"layer dicts, got {layers!r}")
  return layers


def _layer_error(i, e):
  return ChildConfigError(f"layer {i + 1}: {e.reason}")


def blocks_from_config(config: Mapping[str, Any],
                       stem_filters: Optional[int] = None) -> List[BlockArgs]:
  """The BlockArgs of each layer of a search-space config (validated).

  Args:
    config: the decoded config (see the module docstring).
    stem_filters: overrides config["stem_filters"]: the first layer's input.

  Raises:
    ChildConfigError: naming the layer (counted from 1) and key at fault.
  """
  layers = _check_config(config)
  width = _top_level(config, "stem_filters", stem_filters)
  blocks = []
  for i, layer in enumerate(layers):
    if not isinstance(layer, Mapping):
      raise ChildConfigError(f"layer {i + 1}: must be a dict of per-layer "
                             f"choices, got {layer!r}")
    unknown = sorted(set(layer) - set(LAYER_DEFAULTS))
    if unknown:
      raise ChildConfigError(
          f"layer {i + 1}: unknown key {unknown[0]!r} (known: "
          f"{', '.join(LAYER_DEFAULTS)})")
    v = dict(LAYER_DEFAULTS, **layer)
    if v["filters"] is None:
      v["filters"] = width
    try:
      kernel = check_kernel_size(v["kernel_size"], "'kernel_size'")
      filters = check_int(v["filters"], "'filters'", 1, MAX_FILTERS)
      repeats = check_int(v["repeats"], "'repeats'", 1, MAX_REPEATS)
      expand = check_int(v["expand_ratio"], "'expand_ratio'", 1,
                    MAX_EXPAND_RATIO)
      se = check_se_ratio(v["se_ratio"], "'se_ratio'")
      act = check_activation(v["activation"], "'activation'")
      stride = check_int(v["stride"], "'stride'", 1, MAX_STRIDE)
      if not isinstance(v["skip"], bool):
        raise ChildConfigError(f"'skip' must be true or false, got "
                               f"{v['skip']!r}")
      block = BlockArgs(kernel_size=kernel, num_repeat=repeats,
                        input_filters=width, output_filters=filters,
                        expand_ratio=expand, strides=(stride, stride),
                        se_ratio=se, id_skip=v["skip"], activation=act)
    except ChildConfigError as e:
      raise _layer_error(i, e) from None
    blocks.append(block)
    width = filters
  return blocks


def config_from_blocks(blocks: Sequence[BlockArgs],
                       **top_level) -> Dict[str, Any]:
  """The inverse of blocks_from_config (blocks must chain their widths).

  Keyword arguments (stem_filters, stem_stride, head_filters) are stored
  at the top level; stem_filters defaults to the first block's input width.
  """
  blocks = list(blocks)
  if not blocks:
    raise ChildConfigError("no blocks")
  for i, b in enumerate(blocks):
    if b.strides[0] != b.strides[1]:
      raise ChildConfigError(f"layer {i + 1}: strides {b.strides} are not "
                             "square; a config holds one stride per layer")
    if i and b.input_filters != blocks[i - 1].output_filters:
      raise ChildConfigError(
          f"layer {i + 1}: input_filters {b.input_filters} != output_filters "
          f"{blocks[i - 1].output_filters} of layer {i}")
  unknown = set(top_level) - set(GLOBAL_DEFAULTS)
  if unknown:
    raise ChildConfigError(f"unknown top-level key {sorted(unknown)[0]!r}")
  config = {"stem_filters": blocks[0].input_filters}
  config.update(top_level)
  if config["stem_filters"] != blocks[0].input_filters:
    raise ChildConfigError(
        f"stem_filters {config['stem_filters']} != input_filters "
        f"{blocks[0].input_filters} of layer 1")
  config["layers"] = [
      {"kernel_size": b.kernel_size, "filters": b.output_filters,
       "repeats": b.num_repeat, "expand_ratio": b.expand_ratio,
       "se_ratio": b.se_ratio, "activation": b.activation,
       "stride": b.strides[0], "skip": b.id_skip} for b in blocks]
  return config


# ----------------------------------------------------------------- building
def _bn(x, name, momentum, epsilon):
  return keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon,
                                         name=name)(x)


def mbconv_block(inputs, block: BlockArgs, index: int, prefix: str, *,
                 bn_momentum: float, bn_epsilon: float = BN_EPSILON):
  """Block `index` (0-based) of a layer, applied to `inputs` (functional).

  Layer names are f"{prefix}_expand_conv", f"{prefix}_dwconv", ...
  """
  in_filters = block.block_input_filters(index)
  strides = block.block_strides(index)
  act = block.activation
  inner = in_filters * block.expand_ratio
  x = inputs
  if block.expand_ratio != 1:
    x = keras.layers.Conv2D(inner, 1, padding="same", use_bias=False,
                            kernel_initializer=CONV_KERNEL_INITIALIZER,
                            name=f"{prefix}_expand_conv")(x)
    x = _bn(x, f"{prefix}_expand_bn", bn_momentum, bn_epsilon)
    x = keras.layers.Activation(act, name=f"{prefix}_expand_act")(x)
  x = keras.layers.DepthwiseConv2D(
      block.kernel_size, strides=strides, padding="same", use_bias=False,
      depthwise_initializer=CONV_KERNEL_INITIALIZER,
      name=f"{prefix}_dwconv")(x)
  x = _bn(x, f"{prefix}_dw_bn", bn_momentum, bn_epsilon)
  x = keras.layers.Activation(act, name=f"{prefix}_dw_act")(x)
  if block.has_se:
    se = keras.layers.GlobalAveragePooling2D(
        keepdims=True, name=f"{prefix}_se_squeeze")(x)
    se = keras.layers.Conv2D(block.se_filters(index), 1, activation=act,
                             kernel_initializer=CONV_KERNEL_INITIALIZER,
                             name=f"{prefix}_se_reduce")(se)
    se = keras.layers.Conv2D(inner, 1, activation="sigmoid",
                             kernel_initializer=CONV_KERNEL_INITIALIZER,
                             name=f"{prefix}_se_expand")(se)
    x = keras.layers.Multiply(name=f"{prefix}_se_excite")([x, se])
  x = keras.layers.Conv2D(block.output_filters, 1, padding="same",
                          use_bias=False,
                          kernel_initializer=CONV_KERNEL_INITIALIZER,
                          name=f"{prefix}_project_conv")(x)
  x = _bn(x, f"{prefix}_project_bn", bn_momentum, bn_epsilon)
  if block.has_residual(index):
    x = keras.layers.Add(name=f"{prefix}_add")([x, inputs])
  return x


def _check_build_args(input_shape, num_classes, bn_momentum, dropout):
  try:
    shape = tuple(input_shape)
  except TypeError:
    raise ChildConfigError(f"input_shape must be (height, width, channels), "
                           f"got {input_shape!r}") from None
  if len(shape) != 3:
    raise ChildConfigError(f"input_shape must be (height, width, channels), "
                           f"got {input_shape!r}")
  shape = tuple(check_int(d, "input_shape entry", 1, 1 << 20)
                for d in shape)
  num_classes = check_int(num_classes, "num_classes", 1, 1 << 24)
  for value, what, low, high in ((bn_momentum, "bn_momentum", 0.0, 1.0),
                                 (dropout, "dropout", 0.0, 1.0)):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
        or not low <= value < high):
      raise ChildConfigError(f"{what} must be in [{low}, {high}), got "
                             f"{value!r}")
  return shape, num_classes


def build_from_blocks(blocks: Sequence[BlockArgs],
                      input_shape: Sequence[int] = (32, 32, 3),
                      num_classes: int = 10, *,
                      stem_filters: Optional[int] = None,
                      stem_stride: int = GLOBAL_DEFAULTS["stem_stride"],
                      head_filters: int = GLOBAL_DEFAULTS["head_filters"],
                      bn_momentum: float = 0.9,
                      bn_epsilon: float = BN_EPSILON,
                      dropout: float = 0.2,
                      preprocessing: Optional[Tuple[Sequence[float],
                                                    Sequence[float]]] = None,
                      name: str = "child") -> keras.Model:
  """Builds the Keras model of a list of layers given as BlockArgs.

  stem_filters defaults to the first layer's input_filters and must equal
  it; each layer's input_filters must equal the previous output_filters.
  preprocessing: (mean, std) per channel on the 0..255 scale: the model
  normalises raw images itself. The model outputs logits [batch,
  num_classes].
  """
  blocks = list(blocks)
  if not blocks:
    raise ChildConfigError("a child needs at least one layer")
  for i, b in enumerate(blocks):
    if not isinstance(b, BlockArgs):
      raise ChildConfigError(f"layer {i + 1}: not a BlockArgs: {b!r}")
  if stem_filters is None:
    stem_filters = blocks[0].input_filters
  stem_filters = check_int(stem_filters, "stem_filters", 1, MAX_FILTERS)
  stem_stride = check_int(stem_stride, "stem_stride", 1, MAX_STRIDE)
  head_filters = check_int(head_filters, "head_filters", 1, MAX_FILTERS)
  width = stem_filters
  for i, b in enumerate(blocks):
    if b.input_filters != width:
      raise ChildConfigError(
          f"layer {i + 1}: input_filters {b.input_filters} != {width}, the "
          f"width entering it ({'stem' if i == 0 else f'layer {i}'})")
    width = b.output_filters
  shape, num_classes = _check_build_args(input_shape, num_classes,
                                         bn_momentum, dropout)

  inputs = keras.Input(shape=shape, name="images")
  x = inputs
  if preprocessing is not None:
    mean, std = (np.asarray(v, dtype=np.float32) for v in preprocessing)
    if mean.shape != (shape[-1],) or std.shape != (shape[-1],) or not (
        np.all(std > 0)):
      raise ChildConfigError(f"preprocessing must be (mean, std) with "
                             f"{shape[-1]} values each and std > 0")
    x = keras.layers.Normalization(mean=mean.tolist(),
                                   variance=(std ** 2).tolist(),
                                   name="normalize")(x)
  x = keras.layers.Conv2D(stem_filters, 3, strides=stem_stride,
                          padding="same", use_bias=False,
                          kernel_initializer=CONV_KERNEL_INITIALIZER,
                          name="stem_conv")(x)
  x = _bn(x, "stem_bn", bn_momentum, bn_epsilon)
  x = keras.layers.Activation("relu", name="stem_act")(x)
  for i, block in enumerate(blocks):
    for j in range(block.num_repeat):
      x = mbconv_block(x, block, j, f"layer{i + 1}_block{j + 1}",
                       bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)
  x = keras.layers.Conv2D(head_filters, 1, padding="same", use_bias=False,
                          kernel_initializer=CONV_KERNEL_INITIALIZER,
                          name="head_conv")(x)
  x = _bn(x, "head_bn", bn_momentum, bn_epsilon)
  x = keras.layers.Activation("relu", name="head_act")(x)
  x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
  if dropout > 0:
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
  outputs = keras.layers.Dense(num_classes,
                               kernel_initializer=DENSE_KERNEL_INITIALIZER,
                               name="classifier")(x)
  return keras.Model(inputs, outputs, name=name)


def build_child(config: Mapping[str, Any],
                input_shape: Sequence[int] = (32, 32, 3),
                num_classes: int = 10, *,
                bn_momentum: float = 0.9,
                bn_epsilon: float = BN_EPSILON,
                dropout: float = 0.2,
                stem_filters: Optional[int] = None,
                stem_stride: Optional[int] = None,
                head_filters: Optional[int] = None,
                preprocessing: Optional[Tuple[Sequence[float],
                                              Sequence[float]]] = None,
                name: str = "child") -> keras.Model:
  """Builds the Keras child of a search-space config (uncompiled).

  Args:
    config: {"layers": [...], optional "stem_filters", "stem_stride",
      "head_filters"}; see the module docstring for keys and defaults.
    input_shape: (height, width, channels).
    num_classes: width of the logits.
    bn_momentum: BatchNormalization momentum. 0.9 rather than Keras' 0.99:
      with 0.99 the moving statistics of a child trained for a few epochs
      lag far behind and evaluation sits at chance.
    bn_epsilon: BatchNormalization epsilon (MnasNet: 1e-3).
    dropout: rate before the classifier (0: no Dropout layer).
    stem_filters, stem_stride, head_filters: override the config's values.
    preprocessing: (mean, std) per channel on the 0..255 scale: the model
      starts with a Normalization layer and takes raw images.
    name: the model's name.

  Returns:
    An uncompiled keras.Model from images to logits.

  Raises:
    ChildConfigError (a GraphNasError and ValueError): a bad config or
    argument, naming the layer and key at fault.
  """
  blocks = blocks_from_config(config, stem_filters)
  return build_from_blocks(
      blocks, input_shape, num_classes,
      stem_filters=blocks[0].input_filters,
      stem_stride=_top_level(config, "stem_stride", stem_stride),
      head_filters=_top_level(config, "head_filters", head_filters),
      bn_momentum=bn_momentum, bn_epsilon=bn_epsilon, dropout=dropout,
      preprocessing=preprocessing, name=name)


def kwargs_from_task_params(task_params: Mapping[str, str]) -> Dict[str, Any]:
  """build_child keyword arguments from a space's task_params.

  Reads "image_size" (square input, 3 channels) and "num_classes"; other
  entries (e.g. "dataset") are ignored.
  """
  out = {}
  try:
    if "image_size" in task_params:
      size = int(task_params["image_size"])
      out["input_shape"] = (size, size, 3)
    if "num_classes" in task_params:
      out["num_classes"] = int(task_params["num_classes"])
  except ValueError as e:
    raise ChildConfigError(f"task_params: {e}") from None
  return out


# ------------------------------------------------------------------ presets
MNASNET_A1_BLOCKS = (
    "r1_k3_s11_e1_i32_o16_noskip", "r2_k3_s22_e6_i16_o24",
    "r3_k5_s22_e3_i24_o40_se0.25", "r4_k3_s22_e6_i40_o80",
    "r2_k3_s11_e6_i80_o112_se0.25", "r3_k5_s22_e6_i112_o160_se0.25",
    "r1_k3_s11_e6_i160_o320",
)

# A mid-sized CIFAR-10 child of protos/cifar.textproto's kind (5 layers).
CIFAR_DEFAULT_BLOCKS = (
    "r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24",
    "r2_k5_s11_e6_i24_o40_se0.25_aswish", "r2_k3_s22_e6_i40_o80",
    "r1_k5_s11_e6_i80_o96_se0.25_aswish",
)

PRESETS = {
    # MnasNet-A1 (tensorflow/tpu models/official/mnasnet/mnasnet_models.py):
    # ImageNet 224x224, 1000 classes, stem 32 stride 2, head 1280, dropout
    # 0.2. The first layer is MnasNet's SepConv: expand ratio 1, no skip.
    "mnasnet-a1": dict(blocks=MNASNET_A1_BLOCKS, input_shape=(224, 224, 3),
                       num_classes=1000, stem_stride=2, head_filters=1280,
                       dropout=0.2),
    # CIFAR-10 sized: 32x32, 10 classes, stem stride 1.
    "cifar-default": dict(blocks=CIFAR_DEFAULT_BLOCKS,
                          input_shape=(32, 32, 3), num_classes=10,
                          stem_stride=1, head_filters=1280, dropout=0.2),
}


def preset(name: str) -> Dict[str, Any]:
  """build_child keyword arguments of a named preset.

  Use as ``build_child(**preset("mnasnet-a1"))``; the result's "config" is a
  regular search-space config (a fresh copy each call).
  """
  if name not in PRESETS:
    raise ChildConfigError(f"unknown preset {name!r}; known: "
                           f"{', '.join(sorted(PRESETS))}")
  p = copy.deepcopy(PRESETS[name])
  blocks = decode_block_strings(p.pop("blocks"))
  p["config"] = config_from_blocks(blocks, stem_stride=p.pop("stem_stride"),
                                   head_filters=p.pop("head_filters"))
  p["name"] = name.replace("-", "_")
  return p


# --------------------------------------------------------------------- cost
def count_params(model: keras.Model, trainable_only: bool = False) -> int:
  """Number of weights; with trainable_only, BN moving statistics excluded."""
  weights = model.trainable_weights if trainable_only else model.weights
  return int(sum(math.prod(w.shape) for w in weights))


def _spatial(shape):
  return math.prod(int(d) for d in shape[1:-1])


def _layer_flops(layer) -> int:
  if isinstance(layer, keras.Model):
    return count_flops(layer)
  if isinstance(layer, keras.layers.DepthwiseConv2D):  # before Conv2D
    out = layer.output.shape
    k = math.prod(layer.kernel_size)
    return _spatial(out) * int(out[-1]) * k
  if isinstance(layer, keras.layers.Conv2D):
    out = layer.output.shape
    cin = int(layer.input.shape[-1])
    k = math.prod(layer.kernel_size)
    return _spatial(out) * int(out[-1]) * k * cin // layer.groups
  if isinstance(layer, keras.layers.Dense):
    out = layer.output.shape
    cin = int(layer.input.shape[-1])
    return math.prod(int(d) for d in out[1:]) * cin
  if isinstance(layer, keras.layers.Multiply):
    return math.prod(int(d) for d in layer.output.shape[1:])
  return 0


def count_flops(model: keras.Model) -> int:
  """Multiply-adds of one image's forward pass, from layer shapes.

  Counted: Conv2D (out_h * out_w * c_out * k_h * k_w * c_in / groups; this
  includes the 1x1 convs of squeeze-and-excite at 1x1), DepthwiseConv2D
  (out_h * out_w * c * k_h * k_w), Dense (c_in * c_out) and Multiply (one
  multiply per output element: the squeeze-and-excite scaling). Not counted:
  biases, BatchNormalization (foldable into the conv), activations, pooling,
  residual adds. Nested models are counted recursively; each layer must be
  called once (true of every child this module builds).
  """
  return int(sum(_layer_flops(layer) for layer in model.layers))


def _out(size, stride):
  return -(-size // stride)  # "same" padding: ceil(size / stride)


def estimate_cost(config: Mapping[str, Any],
                  input_shape: Sequence[int] = (32, 32, 3),
                  num_classes: int = 10, *,
                  stem_filters: Optional[int] = None,
                  stem_stride: Optional[int] = None,
                  head_filters: Optional[int] = None) -> Dict[str, int]:
  """Parameters and multiply-adds of build_child(config, ...) without Keras.

  Same arguments (those that change the cost) and validation as build_child;
  returns {"params", "trainable_params", "flops"} equal to count_params and
  count_flops of the built model (tested), in microseconds rather than the
  seconds a Keras build takes: cheap enough to score or filter every walk.
  """
  blocks = blocks_from_config(config, stem_filters)
  shape, num_classes = _check_build_args(input_shape, num_classes, 0.9, 0.0)
  stride = _top_level(config, "stem_stride", stem_stride)
  head = _top_level(config, "head_filters", head_filters)
  stem = blocks[0].input_filters
  h, w = _out(shape[0], stride), _out(shape[1], stride)
  params = 9 * shape[2] * stem
  bn = stem  # channels of every BatchNormalization (4 weights, 2 trainable)
  flops = h * w * 9 * shape[2] * stem
  for b in blocks:
    for j in range(b.num_repeat):
      cin = b.block_input_filters(j)
      inner = cin * b.expand_ratio
      if b.expand_ratio != 1:
        params += cin * inner
        bn += inner
        flops += h * w * cin * inner
      sh, sw = b.block_strides(j)
      h, w = _out(h, sh), _out(w, sw)
      k2 = b.kernel_size ** 2
      params += k2 * inner
      bn += inner
      flops += h * w * inner * k2
      se = b.se_filters(j)
      if se:
        params += inner * se + se + se * inner + inner
        flops += inner * se + se * inner + h * w * inner
      params += inner * b.output_filters
      bn += b.output_filters
      flops += h * w * inner * b.output_filters
  c = blocks[-1].output_filters
  params += c * head + head * num_classes + num_classes
  bn += head
  flops += h * w * c * head + head * num_classes
  return {"params": params + 4 * bn, "trainable_params": params + 2 * bn,
          "flops": flops}


# -------------------------------------------------------------- persistence
def save_child(model: keras.Model, config: Mapping[str, Any],
               directory: str,
               extra: Optional[Mapping[str, Any]] = None) -> Dict[str, str]:
  """Writes <directory>/model.keras and <directory>/architecture.json.

  architecture.json holds the config, its block strings, the input shape,
  number of classes, the parameter and multiply-add counts ("flops"), and
  the entries of `extra` (e.g. dataset, training budget, accuracy). Returns
  the paths.
  """
  os.makedirs(directory, exist_ok=True)
  model_path = os.path.join(directory, "model.keras")
  arch_path = os.path.join(directory, "architecture.json")
  model.save(model_path)
  try:
    blocks = encode_block_strings(blocks_from_config(config))
  except ChildConfigError:
    blocks = None  # a config edited since the build; keep it as it is
  arch = {
      "config": config,
      "block_strings": blocks,
      "input_shape": [int(d) for d in model.input_shape[1:]],
      "num_classes": int(model.output_shape[-1]),
      "params": count_params(model),
      "trainable_params": count_params(model, trainable_only=True),
      "flops": count_flops(model),
  }
  arch.update(dict(extra or {}))
  with open(arch_path, "w", encoding="utf-8") as f:
    json.dump(arch, f, indent=2, sort_keys=True, default=_json_default)
    f.write("\n")
  return {"model": model_path, "architecture": arch_path}


def _json_default(obj):
  if isinstance(obj, np.generic):
    return obj.item()
  raise TypeError(f"not JSON-serialisable: {obj!r}")


def load_child(directory: str) -> Tuple[keras.Model, Dict[str, Any]]:
  """Reads what save_child wrote: (model, architecture dict)."""
  model = keras.models.load_model(os.path.join(directory, "model.keras"))
  with open(os.path.join(directory, "architecture.json"),
            encoding="utf-8") as f:
    arch = json.load(f)
  return model, arch
