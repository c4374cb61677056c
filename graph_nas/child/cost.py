"""A child's cost without training: parameters and multiply-adds.

:func:`count_params` and :func:`count_flops` (analytic multiply-adds from the
layer shapes of a built model), and :func:`estimate_cost` (the same two
numbers from the config alone, no Keras: microseconds, not the seconds of a
Keras build).
"""

import math
from typing import Any, Dict, Mapping, Optional, Sequence

import keras

from graph_nas.child.config import (blocks_from_config, check_build_args,
                                    top_level_value)


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
  shape, num_classes = check_build_args(input_shape, num_classes, 0.9, 0.0)
  stride = top_level_value(config, "stem_stride", stem_stride)
  head = top_level_value(config, "head_filters", head_filters)
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
