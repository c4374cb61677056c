"""How children are trained and scored: one settings object per search.

`TrainSettings` is plain data (every field a number, string or None), shared
by all children of a search. `budget_identity()` is the part that decides
what a reward means (data, budget, optimiser): a search refuses to resume
when it differs. `mnas_reward` is MnasNet's multi-objective reward.
"""

import dataclasses
from typing import Optional

from graph_nas.errors import GraphNasError
from graph_nas.options import Settings, identity_fields, setting

STRATEGIES = ("default", "mirrored", "tpu")
OPTIMIZERS = ("sgd", "adam")
MIXED_PRECISION = (None, "mixed_float16", "mixed_bfloat16")
EVAL_ROLES = ("validation", "test")
MNAS_EXPONENT = -0.07


class _AnyNumber(tuple):
  """The values of a setting that is set: anything but None (the `only`
  of the MnasNet exponents, which act only with target_flops)."""

  def __contains__(self, value):
    return value is not None


_SET = _AnyNumber()


@dataclasses.dataclass(frozen=True)
class TrainSettings(Settings):
  """How children are trained and scored (shared by all children of a
  search). Each field is declared once (graph_nas.options.setting): the
  launcher's child-training flags, graph_nas.api.search's keyword arguments,
  the run's identity (`budget_identity`) and the error wording derive from
  the declarations below; `describe([TrainSettings])` lists them."""
  unknown_wording = "unknown training setting"

  dataset: str = setting(
      "cifar10", "tfds dataset: cifar10 or imagenet2012.", kind=str,
      identity=True)
  data_dir: Optional[str] = setting(
      None, "tfds data dir (None: $TFDS_DATA_DIR, else ../shared/data/tfds "
      "beside the repository when it exists, else tfds' default, where "
      "CIFAR-10 is downloaded when missing).", kind=str)
  download: bool = setting(
      False, "Let tfds download a missing dataset into data_dir (needs "
      "internet).")
  image_size: Optional[int] = setting(
      None, "Side of the square images children see (None: the dataset's "
      "own, 32 for CIFAR-10, 224 for ImageNet).", kind=int, lower=8,
      identity=True)
  num_classes: Optional[int] = setting(
      None, "Expected number of classes (None: the dataset's); a mismatch "
      "with the dataset is an error.", kind=int, lower=1, identity=True,
      flagged=False)
  train_examples: Optional[int] = setting(
      None, "Train children on the first N examples of the training part "
      "only.", kind=int, lower=1, identity=True)
  eval_examples: Optional[int] = setting(
      None, "Score children on the first N held-out examples only.",
      kind=int, lower=1, identity=True)
  eval_role: str = setting(
      "validation", "validation (the held-out reward split) or test.",
      choices=EVAL_ROLES, identity=True, flagged=False)
  batch_size: int = setting(128, "Child training batch size (global: split "
                            "over replicas).", lower=1, identity=True)
  epochs: float = setting(
      20.0, "Training epochs per child (of train_examples when set); may be "
      "fractional.", lower=0.0, lower_open=True, identity=True)
  steps: Optional[int] = setting(
      None, "Training steps per child; overrides epochs.", kind=int,
      lower=1, identity=True)
  optimizer: str = setting(
      "sgd", "Child optimizer: sgd (momentum, Nesterov) or adam.",
      choices=OPTIMIZERS, identity=True)
  learning_rate: Optional[float] = setting(
      None, "Peak child learning rate (default: 0.1 * batch_size / 128 for "
      "SGD, 1e-3 for Adam).", kind=float, lower=0.0, lower_open=True,
      flag="child_learning_rate", identity=True)
  momentum: float = setting(0.9, "SGD momentum of the children.", lower=0.0,
                            upper=1.0, upper_open=True, identity=True)
  weight_decay: Optional[float] = setting(
      5e-4, "Decoupled weight decay of the children.", kind=float,
      lower=0.0, identity=True)
  warmup_fraction: float = setting(
      0.05, "Share of a child's steps with linear warm-up from 0; a cosine "
      "decay to 0 follows.", lower=0.0, upper=1.0, upper_open=True,
      identity=True)
  label_smoothing: float = setting(
      0.0, "Label smoothing of the children's training loss.", lower=0.0,
      upper=1.0, upper_open=True, identity=True)
  clipnorm: Optional[float] = setting(
      None, "Clip each gradient of a child to this norm (None: no "
      "clipping).", kind=float, lower=0.0, lower_open=True, identity=True)
  augment: bool = setting(
      True, "Augment children's training batches (CIFAR: pad-4 crop + flip; "
      "ImageNet: random-resized crop + flip); short budgets learn faster "
      "without.", identity=True)
  strategy: str = setting(
      "default", "tf.distribute strategy for child training: default (CPU "
      "or one GPU), mirrored (all local GPUs, else all logical CPUs) or "
      "tpu.", choices=STRATEGIES)
  tpu: Optional[str] = setting(
      None, "TPU address (with strategy tpu; '' or 'local' on a TPU VM).",
      kind=str, only=("strategy", ("tpu",)))
  mixed_precision: Optional[str] = setting(
      None, "Mixed precision policy for children.", kind=str,
      choices=MIXED_PRECISION, identity=True)
  steps_per_execution: int = setting(
      1, "Child training steps per call into TensorFlow (1 is fastest on "
      "CPUs; TPUs want tens).", lower=1)
  jit_compile: bool = setting(
      False, "XLA-compile the children's train step (helps on GPU/TPU, not "
      "on CPU).")
  deterministic: bool = setting(
      False, "TensorFlow op determinism: a child trained twice with the "
      "same seed gives the same weights and reward, so a resumed search "
      "stores the same rewards as an uninterrupted one (slower on some "
      "devices).")
  target_flops: Optional[float] = setting(
      None, "MnasNet multi-objective reward: accuracy * (flops / target)^w "
      "with this multiply-adds target; off when unset.", kind=float,
      lower=0.0, lower_open=True, identity=True)
  reward_alpha: float = setting(
      MNAS_EXPONENT, "Exponent w of the MnasNet reward at or below "
      "target_flops (reward_alpha; the flag sets it and reward_beta, w "
      "above the target: the paper's soft constraint).", upper=0.0,
      flag="flops_exponent", identity=True,
      only=("target_flops", _SET))
  reward_beta: float = setting(
      MNAS_EXPONENT, "w of the MnasNet reward above target_flops.",
      upper=0.0, flag="flops_exponent", identity=True,
      only=("target_flops", _SET))
  progress_every_s: float = setting(
      10.0, "Log a progress line inside a child at least this often, in "
      "seconds (0: never).", lower=0.0)
  model_kwargs: dict = setting(
      None, "Extra keyword arguments of the model builder (e.g. "
      "bn_momentum, dropout), a dict (or (name, value) pairs).", kind=dict,
      default_factory=dict, identity=True, flagged=False)

  def peak_learning_rate(self) -> float:
    if self.learning_rate is not None:
      return float(self.learning_rate)
    return 0.1 * self.batch_size / 128 if self.optimizer == "sgd" else 1e-3

  def budget_identity(self) -> dict:
    """The settings that give a reward its meaning (data, budget, recipe):
    those declared identity=True.

    Two runs whose identities differ produce rewards that must not be mixed
    in one search; `graph_nas.search` refuses to resume across them.
    """
    out = {k: getattr(self, k) for k in identity_fields(TrainSettings)}
    if self.steps is not None:
      out["epochs"] = None
    out["model_kwargs"] = dict(sorted(dict(self.model_kwargs).items()))
    return out


@dataclasses.dataclass(frozen=True)
class RetrainSettings(Settings):
  """The best child's retraining at the end of a search (scored on the test
  split): what differs from the search's TrainSettings (`final()`)."""

  retrain_best: bool = setting(
      True, "Retrain the best child at the end, score it on the test split, "
      "save it as .keras.")
  final_epochs: Optional[float] = setting(
      None, "Epochs of the best child's retraining before it is scored on "
      "the test split (default: the search's epochs).", kind=float,
      lower=0.0, lower_open=True, only=("retrain_best", (True,)))
  final_train_examples: Optional[int] = setting(
      None, "Training examples of the best child's retraining (default: "
      "the search's train_examples; 0: the whole training part).", kind=int,
      lower=0, only=("retrain_best", (True,)))
  final_augment: bool = setting(
      True, "Augment the best child's retraining batches.",
      only=("retrain_best", (True,)))

  def final(self, search: TrainSettings) -> TrainSettings:
    """The retraining's TrainSettings: the search's, scored on the whole
    test split, with this object's epochs, examples and augmentation."""
    examples = self.final_train_examples
    if examples is None:
      examples = search.train_examples
    return search.replace(
        eval_role="test", eval_examples=None,
        epochs=self.final_epochs or search.epochs,
        steps=None if self.final_epochs else search.steps,
        train_examples=examples or None,
        augment=self.final_augment).check()


CHILD_SETTINGS_CLASSES = (TrainSettings, RetrainSettings)


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
