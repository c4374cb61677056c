"""How children are trained and scored: one settings object per search.

`TrainSettings` is plain data (every field a number, string or None), shared
by all children of a search. `budget_identity()` is the part that decides
what a reward means (data, budget, optimiser): a search refuses to resume
when it differs. `mnas_reward` is MnasNet's multi-objective reward.
"""

import dataclasses
import math

from graph_nas.errors import GraphNasError

STRATEGIES = ("default", "mirrored", "tpu")
OPTIMIZERS = ("sgd", "adam")
MIXED_PRECISION = (None, "mixed_float16", "mixed_bfloat16")
EVAL_ROLES = ("validation", "test")
MNAS_EXPONENT = -0.07


@dataclasses.dataclass(frozen=True)
class TrainSettings:
  """How children are trained and scored (shared by all children of a search).

  Attributes:
    dataset: "cifar10" or "imagenet2012".
    data_dir: tfds data dir (None: see graph_nas.child.data.resolve_data_dir).
    download: let tfds download a missing dataset.
    image_size: side of the square images children see (None: the
      dataset's own, 32 for CIFAR-10, 224 for ImageNet).
    num_classes: expected number of classes (None: the dataset's); a
      mismatch with the dataset is an error.
    train_examples: train on the first N examples of the training part.
    eval_examples: score on the first N examples of the evaluation split.
    eval_role: "validation" (the held-out reward split) or "test".
    batch_size: global batch size (split over replicas).
    epochs: training budget in epochs (of `train_examples` if set); may be
      fractional.
    steps: training budget in steps; overrides `epochs` when set.
    optimizer: "sgd" (momentum, Nesterov) or "adam".
    learning_rate: peak learning rate; default 0.1 * batch_size / 128 for SGD,
      1e-3 for Adam.
    momentum: SGD momentum.
    weight_decay: decoupled weight decay.
    warmup_fraction: share of the steps with linear warm-up from 0; a cosine
      decay to 0 follows.
    label_smoothing: label smoothing of the training loss.
    clipnorm: clip each gradient to this norm (None: no clipping).
    augment: augment training batches (CIFAR: pad-4 crop + flip; ImageNet:
      random-resized crop + flip).
    strategy: "default" (CPU or one GPU), "mirrored" (all local GPUs, else
      all logical CPUs) or "tpu".
    tpu: TPU address for TPUClusterResolver ("" or "local" for a TPU VM).
    mixed_precision: None, "mixed_float16" or "mixed_bfloat16".
    steps_per_execution: training steps run per call into TensorFlow.
    jit_compile: XLA-compile the train step (helps on GPU/TPU, not on CPU).
    deterministic: TensorFlow op determinism: a child trained twice with
      the same seed gives the same weights and reward.
    target_flops: enables the MnasNet reward (multiply-adds target).
    reward_alpha: MnasNet exponent when cost <= target_flops.
    reward_beta: MnasNet exponent when cost > target_flops.
    progress_every_s: log a progress line inside a child at least this often
      (0: never).
    model_kwargs: extra keyword arguments of the model builder (e.g.
      bn_momentum, dropout), as a tuple of (name, value) pairs or a dict.
  """
  dataset: str = "cifar10"
  data_dir: str | None = None
  download: bool = False
  image_size: int | None = None
  num_classes: int | None = None
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
  augment: bool = True
  strategy: str = "default"
  tpu: str | None = None
  mixed_precision: str | None = None
  steps_per_execution: int = 1
  jit_compile: bool = False
  deterministic: bool = False
  target_flops: float | None = None
  reward_alpha: float = MNAS_EXPONENT
  reward_beta: float = MNAS_EXPONENT
  progress_every_s: float = 10.0
  model_kwargs: dict = dataclasses.field(default_factory=dict)

  def replace(self, **changes) -> "TrainSettings":
    """A copy with `changes`; an unknown field is a GraphNasError."""
    try:
      return dataclasses.replace(self, **changes)
    except TypeError as e:
      raise GraphNasError(f"unknown training setting: {e}") from None

  def peak_learning_rate(self) -> float:
    if self.learning_rate is not None:
      return float(self.learning_rate)
    return 0.1 * self.batch_size / 128 if self.optimizer == "sgd" else 1e-3

  def check(self) -> "TrainSettings":
    """Raises GraphNasError naming the first bad field; returns self."""
    def bad(field, why):
      raise GraphNasError(f"training setting {field}={getattr(self, field)!r}"
                          f": {why}")
    if self.strategy not in STRATEGIES:
      bad("strategy", f"one of {', '.join(STRATEGIES)}")
    if self.optimizer not in OPTIMIZERS:
      bad("optimizer", f"one of {', '.join(OPTIMIZERS)}")
    if self.mixed_precision not in MIXED_PRECISION:
      bad("mixed_precision", "one of mixed_float16, mixed_bfloat16 or None")
    if self.eval_role not in EVAL_ROLES:
      bad("eval_role", f"one of {', '.join(EVAL_ROLES)}")
    if int(self.batch_size) < 1:
      bad("batch_size", "must be positive")
    if self.steps is not None and int(self.steps) < 1:
      bad("steps", "must be positive")
    if self.steps is None and not (math.isfinite(self.epochs) and
                                   self.epochs > 0):
      bad("epochs", "must be positive")
    for field in ("train_examples", "eval_examples", "num_classes"):
      if getattr(self, field) is not None and int(getattr(self, field)) < 1:
        bad(field, "must be positive")
    if self.image_size is not None and int(self.image_size) < 8:
      bad("image_size", "must be at least 8")
    if int(self.steps_per_execution) < 1:
      bad("steps_per_execution", "must be positive")
    if not 0 <= self.warmup_fraction < 1:
      bad("warmup_fraction", "must be in [0, 1)")
    if not 0 <= self.label_smoothing < 1:
      bad("label_smoothing", "must be in [0, 1)")
    if self.learning_rate is not None and not (
        math.isfinite(self.learning_rate) and self.learning_rate > 0):
      bad("learning_rate", "must be positive")
    if self.target_flops is not None and not self.target_flops > 0:
      bad("target_flops", "must be positive")
    return self

  def budget_identity(self) -> dict:
    """The settings that give a reward its meaning (data, budget, recipe).

    Two runs whose identities differ produce rewards that must not be mixed
    in one search; `graph_nas.search` refuses to resume across them.
    """
    keys = ("dataset", "image_size", "num_classes", "train_examples",
            "eval_examples", "eval_role", "batch_size", "epochs", "steps",
            "optimizer", "learning_rate", "momentum", "weight_decay",
            "warmup_fraction", "label_smoothing", "clipnorm", "augment",
            "mixed_precision", "target_flops", "reward_alpha", "reward_beta")
    out = {k: getattr(self, k) for k in keys}
    if self.steps is not None:
      out["epochs"] = None
    out["model_kwargs"] = dict(sorted(dict(self.model_kwargs).items()))
    return out


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
