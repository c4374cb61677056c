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

The config a child is built from (its keys, defaults, checks; presets):
graph_nas.child.config. Its cost without training (parameters,
multiply-adds): graph_nas.child.cost. Their names are re-exported here, as
``graph_nas.child`` lends this module's names (``graph_nas.child.preset``,
``graph_nas.child.estimate_cost``, ...).
"""

import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np

from graph_nas.child.block_args import (  # noqa: F401  (re-exported)
    ACTIVATIONS, BlockArgs, ChildConfigError, MAX_FILTERS, MAX_STRIDE,
    check_int, encode_block_strings)
from graph_nas.child.config import (  # noqa: F401  (re-exported)
    CIFAR_DEFAULT_BLOCKS, GLOBAL_DEFAULTS, LAYER_DEFAULTS, MNASNET_A1_BLOCKS,
    PRESETS, blocks_from_config, check_build_args, config_from_blocks,
    kwargs_from_task_params, preset, top_level_value)
from graph_nas.child.cost import (  # noqa: F401  (re-exported)
    count_flops, count_params, estimate_cost)

__all__ = [
    "ACTIVATIONS", "BlockArgs", "ChildConfigError", "GLOBAL_DEFAULTS",
    "LAYER_DEFAULTS", "PRESETS", "blocks_from_config", "build_child",
    "build_from_blocks", "config_from_blocks", "count_flops", "count_params",
    "estimate_cost", "kwargs_from_task_params", "load_child", "mbconv_block",
    "preset", "save_child",
]

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
  blocks, stem_filters, stem_stride, head_filters = _check_blocks(
      blocks, stem_filters, stem_stride, head_filters)
  shape, num_classes = check_build_args(input_shape, num_classes,
                                        bn_momentum, dropout)
  bn = dict(bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)
  inputs = keras.Input(shape=shape, name="images")
  x = _normalize(inputs, preprocessing, shape[-1])
  x = _stem(x, stem_filters, stem_stride, **bn)
  for i, block in enumerate(blocks):
    for j in range(block.num_repeat):
      x = mbconv_block(x, block, j, f"layer{i + 1}_block{j + 1}", **bn)
  outputs = _head(x, head_filters, num_classes, dropout, **bn)
  return keras.Model(inputs, outputs, name=name)


def _check_blocks(blocks, stem_filters, stem_stride, head_filters):
  """(blocks as a list, stem_filters, stem_stride, head_filters), checked:
  the blocks are BlockArgs whose widths chain from the stem's."""
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
  return blocks, stem_filters, stem_stride, head_filters


def _normalize(x, preprocessing, channels):
  """The "normalize" layer of raw images (preprocessing: (mean, std) per
  channel), or x itself without preprocessing."""
  if preprocessing is None:
    return x
  mean, std = (np.asarray(v, dtype=np.float32) for v in preprocessing)
  if mean.shape != (channels,) or std.shape != (channels,) or not (
      np.all(std > 0)):
    raise ChildConfigError(f"preprocessing must be (mean, std) with "
                           f"{channels} values each and std > 0")
  return keras.layers.Normalization(mean=mean.tolist(),
                                    variance=(std ** 2).tolist(),
                                    name="normalize")(x)


def _stem(x, filters, stride, *, bn_momentum, bn_epsilon):
  """3x3 conv (stride) -> BN -> ReLU."""
  x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same",
                          use_bias=False,
                          kernel_initializer=CONV_KERNEL_INITIALIZER,
                          name="stem_conv")(x)
  x = _bn(x, "stem_bn", bn_momentum, bn_epsilon)
  return keras.layers.Activation("relu", name="stem_act")(x)


def _head(x, filters, num_classes, dropout, *, bn_momentum, bn_epsilon):
  """1x1 conv -> BN -> ReLU -> global average pool -> [dropout] -> logits."""
  x = keras.layers.Conv2D(filters, 1, padding="same", use_bias=False,
                          kernel_initializer=CONV_KERNEL_INITIALIZER,
                          name="head_conv")(x)
  x = _bn(x, "head_bn", bn_momentum, bn_epsilon)
  x = keras.layers.Activation("relu", name="head_act")(x)
  x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
  if dropout > 0:
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
  return keras.layers.Dense(num_classes,
                            kernel_initializer=DENSE_KERNEL_INITIALIZER,
                            name="classifier")(x)


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
      stem_stride=top_level_value(config, "stem_stride", stem_stride),
      head_filters=top_level_value(config, "head_filters", head_filters),
      bn_momentum=bn_momentum, bn_epsilon=bn_epsilon, dropout=dropout,
      preprocessing=preprocessing, name=name)


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
