"""MBConv block arguments as plain data, and their compact string form.

One :class:`BlockArgs` describes one searched *layer* of a MnasNet-like child:
``num_repeat`` MBConv blocks of the same kind, the first of which carries the
stride and the change of width (``input_filters`` -> ``output_filters``).

The string form follows MnasNet (tensorflow/tpu
``models/official/mnasnet/mnasnet_models.py``), extended by an activation
token::

  r2_k3_s22_e6_i16_o24_se0.25_aswish

  r<repeats> k<kernel> s<stride h><stride w> e<expand ratio> i<in filters>
  o<out filters> [se<ratio>] [a<activation>] [noskip]

``se`` is omitted when the ratio is 0 (no squeeze-and-excite), ``a`` when the
activation is ``relu`` (MnasNet's only activation) and ``noskip`` when the
identity skip is allowed, so every MnasNet string decodes, and
``encode(decode(s)) == s`` for strings in this canonical order, and
``decode(encode(b)) == b`` for every valid ``b``. Malformed strings raise
:class:`ChildConfigError` (a :class:`~graph_nas.errors.GraphNasError` and a
``ValueError``).

This module imports neither TensorFlow nor Keras.
"""

import dataclasses
import math
import numbers
import re
from typing import Iterable, List, Tuple

from graph_nas.errors import GraphNasError

ACTIVATIONS = ("relu", "swish")
MAX_KERNEL_SIZE = 15
MAX_STRIDE = 9  # one digit per stride in the string form
MAX_FILTERS = 100_000
MAX_REPEATS = 1_000
MAX_EXPAND_RATIO = 100


class ChildConfigError(GraphNasError, ValueError):
  """A bad child architecture: block string, block args or config."""


def check_int(value, what, low, high):
  """value as an int in [low, high], else ChildConfigError naming `what`."""
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise ChildConfigError(f"{what} must be an integer, got {value!r}")
  if isinstance(value, numbers.Integral):
    out = int(value)
  else:
    if not math.isfinite(value) or not float(value).is_integer():
      raise ChildConfigError(f"{what} must be an integer, got {value!r}")
    out = int(value)
  if not low <= out <= high:
    raise ChildConfigError(f"{what} must be in [{low}, {high}], got {value!r}")
  return out


def check_kernel_size(value, what="kernel_size"):
  k = check_int(value, what, 1, MAX_KERNEL_SIZE)
  if k % 2 == 0:
    raise ChildConfigError(f"{what} must be odd (1, 3, 5, 7, ...), got {k}")
  return k


def check_se_ratio(value, what="se_ratio"):
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise ChildConfigError(f"{what} must be a number in [0, 1], got "
                           f"{value!r}")
  out = float(value)
  if not 0.0 <= out <= 1.0:  # also rejects NaN
    raise ChildConfigError(f"{what} must be in [0, 1] (0: no "
                           f"squeeze-and-excite), got {value!r}")
  return out


def check_activation(value, what="activation"):
  if value not in ACTIVATIONS:
    raise ChildConfigError(f"{what} must be one of {', '.join(ACTIVATIONS)}; "
                           f"got {value!r}")
  return value


@dataclasses.dataclass(frozen=True)
class BlockArgs:
  """One searched layer: `num_repeat` MBConv blocks (plain, hashable data).

  Attributes:
    kernel_size: odd depthwise kernel size.
    num_repeat: blocks in the layer (>= 1).
    input_filters: channels entering the layer's first block.
    output_filters: channels of every block's output.
    expand_ratio: width of the inner (depthwise) part relative to the block's
      input; 1 skips the 1x1 expansion.
    strides: (h, w) stride of the first block's depthwise conv; the other
      blocks use (1, 1).
    se_ratio: squeeze-and-excite width = max(1, int(block input filters *
      se_ratio)); 0 means no squeeze-and-excite.
    id_skip: allow the identity residual (used when a block has stride 1 and
      equal input and output filters). MnasNet's first layer sets it False
      ("noskip").
    activation: "relu" or "swish", in the block and its squeeze-and-excite.
  """
  kernel_size: int
  num_repeat: int
  input_filters: int
  output_filters: int
  expand_ratio: int
  strides: Tuple[int, int] = (1, 1)
  se_ratio: float = 0.0
  id_skip: bool = True
  activation: str = "relu"

  def __post_init__(self):
    put = lambda k, v: object.__setattr__(self, k, v)
    put("kernel_size", check_kernel_size(self.kernel_size))
    put("num_repeat", check_int(self.num_repeat, "num_repeat", 1,
                                MAX_REPEATS))
    put("input_filters", check_int(self.input_filters, "input_filters", 1,
                                   MAX_FILTERS))
    put("output_filters", check_int(self.output_filters, "output_filters",
                                    1, MAX_FILTERS))
    put("expand_ratio", check_int(self.expand_ratio, "expand_ratio", 1,
                                  MAX_EXPAND_RATIO))
    strides = self.strides
    if isinstance(strides, (str, bytes)) or not isinstance(
        strides, Iterable):
      strides = (strides, strides)
    strides = tuple(strides)
    if len(strides) != 2:
      raise ChildConfigError(f"strides must be a pair, got {self.strides!r}")
    put("strides", tuple(check_int(s, "stride", 1, MAX_STRIDE)
                         for s in strides))
    put("se_ratio", check_se_ratio(self.se_ratio))
    if not isinstance(self.id_skip, bool):
      raise ChildConfigError(f"id_skip must be a bool, got {self.id_skip!r}")
    check_activation(self.activation)

  @property
  def has_se(self) -> bool:
    return self.se_ratio > 0

  def block_input_filters(self, index: int) -> int:
    """Input channels of block `index` (0-based) of this layer."""
    return self.input_filters if index == 0 else self.output_filters

  def block_strides(self, index: int) -> Tuple[int, int]:
    return self.strides if index == 0 else (1, 1)

  def has_residual(self, index: int) -> bool:
    """Whether block `index` (0-based) adds its input to its output."""
    return (self.id_skip and self.block_strides(index) == (1, 1)
            and self.block_input_filters(index) == self.output_filters)

  def se_filters(self, index: int) -> int:
    """Squeeze width of block `index`; 0 without squeeze-and-excite."""
    if not self.has_se:
      return 0
    return max(1, int(self.block_input_filters(index) * self.se_ratio))

  def encode(self) -> str:
    return encode_block_string(self)

  @classmethod
  def decode(cls, text: str) -> "BlockArgs":
    return decode_block_string(text)


def encode_block_string(block: BlockArgs) -> str:
  """BlockArgs -> 'r2_k3_s22_e6_i16_o24_se0.25_aswish' (canonical order)."""
  parts = [f"r{block.num_repeat}", f"k{block.kernel_size}",
           f"s{block.strides[0]}{block.strides[1]}", f"e{block.expand_ratio}",
           f"i{block.input_filters}", f"o{block.output_filters}"]
  if block.se_ratio > 0:
    parts.append(f"se{block.se_ratio!r}")
  if block.activation != "relu":
    parts.append(f"a{block.activation}")
  if not block.id_skip:
    parts.append("noskip")
  return "_".join(parts)


_TOKEN = re.compile(r"^(?:(?P<key>[rkeio])(?P<int>\d+)|s(?P<s>\d\d)|"
                    r"se(?P<se>[0-9][0-9.eE+-]*)|a(?P<act>[a-z0-9]+)|"
                    r"(?P<noskip>noskip))$")
_NAMES = {"r": "num_repeat", "k": "kernel_size", "e": "expand_ratio",
          "i": "input_filters", "o": "output_filters"}


def decode_block_string(text: str) -> BlockArgs:
  """'r2_k3_s22_e6_i16_o24_se0.25_aswish' -> BlockArgs; ChildConfigError."""
  if not isinstance(text, str):
    raise ChildConfigError(f"a block string must be a str, got {text!r}")

  def bad(why):
    return ChildConfigError(
        f"bad block string {text!r}: {why} (expected e.g. "
        "'r2_k3_s22_e6_i16_o24_se0.25_aswish': r repeats, k kernel, "
        "s two stride digits, e expand ratio, i/o in/out filters, optional "
        "se<ratio>, a<activation>, noskip)")

  if not text:
    raise bad("empty")
  fields = {}
  for token in text.split("_"):
    m = _TOKEN.match(token)
    if not m:
      raise bad(f"unknown token {token!r}")
    if m.group("key"):
      name, value = _NAMES[m.group("key")], int(m.group("int"))
    elif m.group("s"):
      name, value = "strides", (int(m.group("s")[0]), int(m.group("s")[1]))
    elif m.group("se"):
      try:
        value = float(m.group("se"))
      except ValueError:
        raise bad(f"se ratio {m.group('se')!r} is not a number") from None
      name = "se_ratio"
    elif m.group("act"):
      name, value = "activation", m.group("act")
    else:
      name, value = "id_skip", False
    if name in fields:
      raise bad(f"token {token!r} repeats a field already given")
    fields[name] = value
  missing = [f"{k} ({n})" for k, n in _NAMES.items() if n not in fields]
  if "strides" not in fields:
    missing.append("s (strides)")
  if missing:
    raise bad(f"missing {', '.join(missing)}")
  try:
    return BlockArgs(**fields)
  except ChildConfigError as e:
    raise bad(e.reason) from None


def decode_block_strings(strings: Iterable[str]) -> List[BlockArgs]:
  return [decode_block_string(s) for s in strings]


def encode_block_strings(blocks: Iterable[BlockArgs]) -> List[str]:
  return [encode_block_string(b) for b in blocks]
