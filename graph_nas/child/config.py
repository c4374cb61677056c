"""A child's search-space config: its keys, defaults and checks; presets.

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

:func:`blocks_from_config` turns a config into the :class:`BlockArgs` of its
layers and :func:`config_from_blocks` back; :func:`preset` gives the named
children (MnasNet-A1, a CIFAR-10 default) as configs. The Keras model of a
config: graph_nas.child.model. This module imports neither TensorFlow nor
Keras.
"""

import copy
import numbers
from typing import Any, Dict, List, Mapping, Optional, Sequence

from graph_nas.child.block_args import (
    BlockArgs, ChildConfigError, MAX_EXPAND_RATIO, MAX_FILTERS, MAX_REPEATS,
    MAX_STRIDE, check_activation, check_int, check_kernel_size,
    check_se_ratio, decode_block_strings)

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


# ------------------------------------------------------------------ config
def top_level_value(config, key, override):
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
  width = top_level_value(config, "stem_filters", stem_filters)
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


# ------------------------------------------------------- build arguments
def check_build_args(input_shape, num_classes, bn_momentum, dropout):
  """(input shape tuple, num_classes), checked with the other arguments of
  a build (the model's and the cost estimate's)."""
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
