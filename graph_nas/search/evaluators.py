"""Evaluators: what scores an architecture of a space.

A plain reward function becomes an evaluator through FunctionEvaluator; a
toy space (task "stack_layers" / "select_optimizer") is scored that way by
its toy reward; an image space (task "image_classification") by training a child
built with graph_nas.child on its dataset with one long-lived
graph_nas.child.trainer.ChildTrainer.
"""

import inspect
import math
import numbers
import os
from typing import Callable, Dict, List

from graph_nas.search import halving
from graph_nas.search import tasks
from graph_nas.errors import GraphNasError, SetupError
from graph_nas.search.results import EvalResult
from graph_nas.space import SearchSpace

IMAGE_TASK = "image_classification"


def takes_trial_args(fn) -> bool:
  """True when fn can be called as fn(config, trial_id, seed)."""
  try:
    sig = inspect.signature(fn)
  except (TypeError, ValueError):
    return False
  positional = 0
  for p in sig.parameters.values():
    if p.kind == p.VAR_POSITIONAL:
      return True
    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
      positional += 1
  return positional >= 3


def as_eval_result(out) -> EvalResult:
  """A reward function's return value as an EvalResult."""
  if isinstance(out, EvalResult):
    return out
  if isinstance(out, dict):
    if "reward" not in out:
      raise SetupError(f"the reward function returned a dict without a "
                       f"'reward' entry (keys: {sorted(out)})")
    metrics = {k: v for k, v in out.items() if k != "reward"}
    return EvalResult("ok", _number(out["reward"]), metrics)
  return EvalResult("ok", _number(out))


def _number(x) -> float:
  if isinstance(x, bool) or not isinstance(x, numbers.Real):
    # A fault of the function, not of one architecture: the search stops.
    raise SetupError(f"the reward function returned {x!r} "
                     f"({type(x).__name__}): expected a number, a dict "
                     "with a 'reward' entry, or an EvalResult")
  x = float(x)
  if not math.isfinite(x):
    raise GraphNasError(f"the reward function returned {x}")
  return x


class FunctionEvaluator:
  """An evaluator from a plain function: fn(config) or
  fn(config, trial_id, seed), returning a number, a dict with "reward"
  (other entries become metrics) or an EvalResult.

  A function with a parameter named `trial` takes part in early stopping:
  it gets a graph_nas.search.halving.Trial, reports its score as it
  trains (``trial.report(value, progress)``) and ends when
  ``trial.should_stop()`` (the convention of Optuna's trial.report /
  should_prune; see graph_nas.search.halving). Without rungs its reports
  decide nothing.

  Picklable (so usable on the process and Ray executors) when fn is a
  module-level function."""

  def __init__(self, fn: Callable):
    if not callable(fn):
      raise GraphNasError(f"{fn!r} is not callable")
    self.fn = fn
    self.takes_trial = halving.takes_trial(fn)
    self.trial_args = takes_trial_args(fn)

  def evaluate(self, config, trial_id, seed, trial=None) -> EvalResult:
    kwargs = {}
    if self.takes_trial:
      kwargs["trial"] = trial if trial is not None else halving.Trial(
          f"t{trial_id}", (), lambda report: True, trial_id, seed)
    if self.trial_args:
      return as_eval_result(self.fn(config, trial_id, seed, **kwargs))
    return as_eval_result(self.fn(config, **kwargs))

  def finalize(self, config, out_dir, seed):
    del config, out_dir, seed
    return {}

  def __repr__(self):
    return f"FunctionEvaluator({getattr(self.fn, '__qualname__', self.fn)})"


class ChildEvaluator:
  """Builds a MnasNet-like child from the config, trains it, scores it.

  The trainer (strategy, data, ...) is made on first use and lives as long
  as the evaluator; it does not travel when the evaluator is pickled to a
  worker process (each worker makes its own).
  """

  def __init__(self, settings, final_settings=None):
    """settings, final_settings: graph_nas.child.settings.TrainSettings for
    search trials and for retraining the best child (default: `settings`
    scored on the test split)."""
    self.settings = settings.check()
    self.final_settings = (final_settings or settings.replace(
        eval_role="test")).check()
    self._trainer = None
    self._proxy_cache = None

  def __getstate__(self):
    state = dict(self.__dict__)
    state["_trainer"] = None
    state["_proxy_cache"] = None
    return state

  def _make_trainer(self, settings):
    from graph_nas import child
    from graph_nas.child import trainer as child_trainer
    return child_trainer.ChildTrainer(settings, child.build_child,
                                      flops_fn=child.count_flops,
                                      params_fn=child.count_params)

  @property
  def trainer(self):
    if self._trainer is None:
      self._trainer = self._make_trainer(self.settings)
    return self._trainer

  def prepare(self):
    """Reads the data now (GraphNasError when it is missing)."""
    self.trainer.prepare()

  takes_trial = True  # reports at rungs (early stopping)
  # What screen="auto" is for this evaluator (SearchSettings.resolved):
  # no screening. At equal wall-clock time on CIFAR-10 the demo's
  # screening made the default searcher worse (benchmarks/README.md, "On
  # CIFAR-10 at equal wall-clock time"); a search asks for it by name.
  default_screen = "none"

  # Cheap scores of an untrained child (graph_nas.child.proxies), for
  # screening (graph_nas.search.screening: screen="synflow", ...).
  cheap_score_names = ("synflow", "naswot", "params", "flops")
  proxy_batch = 64  # NASWOT's images: one batch of the training data
  proxy_seed = 0  # the untrained child's weights and the batch's draw

  def cheap_scores(self, configs, name: str) -> List[float]:
    """One score per config, higher = more promising: a zero-cost proxy
    of the untrained child ("synflow", "naswot": each child built with
    Keras' seed `proxy_seed`, scored, dropped) or its size ("params",
    "flops": from the config, no build). NaN for a config whose child
    does not build or cannot be scored (logged). The data (NASWOT's batch of `proxy_batch` training
    images) is read on first use and kept; nothing needs prepare()."""
    if name not in self.cheap_score_names:
      raise GraphNasError(f"unknown cheap score {name!r} (this evaluator "
                          f"offers {', '.join(self.cheap_score_names)})")
    from graph_nas.child import proxies
    trainer = self.trainer  # its dataset description; no data read yet
    shape = tuple(trainer.info.input_shape)
    classes = trainer.info.num_classes
    kwargs = dict(self.settings.model_kwargs)
    if name in ("params", "flops"):
      fn = proxies.flops if name == "flops" else proxies.params_of_config
      out = []
      for config in configs:
        try:
          out.append(fn(config, shape, classes, **kwargs))
        except Exception:  # pylint: disable=broad-except
          out.append(math.nan)  # a config build_child refuses
      return out
    images = self._proxy_images() if name == "naswot" else None
    out = []
    for config in configs:
      try:
        model = trainer.build(config, self.proxy_seed)
      except Exception:  # pylint: disable=broad-except
        out.append(math.nan)
        continue
      try:
        out.append(float(proxies.synflow(model)
                         if name == "synflow" else
                         proxies.naswot(model, images)))
      except Exception as e:  # pylint: disable=broad-except
        # A child the proxy cannot score (out of memory, ...): no score,
        # as a failed training is a result and not the search's end.
        from absl import logging
        logging.warning("%s of %s failed: %s: %s", name, config,
                        type(e).__name__, str(e).splitlines()[0][:300]
                        if str(e) else "")
        out.append(math.nan)
      finally:
        del model
    return out

  def _proxy_images(self):
    if getattr(self, "_proxy_cache", None) is None:
      self._proxy_cache = self.trainer.sample_batch(self.proxy_batch,
                                                    self.proxy_seed)[0]
    return self._proxy_cache

  def evaluate(self, config: dict, trial_id: int, seed: int,
               trial=None) -> EvalResult:
    result = self.trainer.train(config, seed, label=f"trial {trial_id}",
                                trial=trial)
    if result.details:
      result.metrics["traceback"] = result.details[-2000:]
    return result

  def finalize(self, config: dict, out_dir: str, seed: int) -> Dict:
    """Retrains the best config, scores it on the test split, saves it."""
    from graph_nas import child
    s = self.final_settings
    trainer = self._make_trainer(s)
    result, model = trainer.train(config, seed, keep_model=True,
                                  label="best child (retraining)")
    out = {"status": result.status, "reason": result.reason,
           "test_accuracy": result.metrics.get("val_accuracy"),
           "metrics": result.metrics}
    if result.ok and model is not None:
      budget = s.budget_identity()
      out["files"] = child.save_child(model, config, out_dir, extra={
          "dataset": s.dataset,
          "image_size": int(trainer.info.input_shape[0]),
          "input": "raw RGB images, 0..255 (the model normalises them)",
          "training": budget,
          "seed": int(seed),
          f"{s.eval_role}_accuracy": result.metrics.get("val_accuracy"),
          f"{s.eval_role}_examples": result.metrics.get("val_examples"),
      })
      out["files"]["directory"] = os.path.abspath(out_dir)
    return out


def evaluator_for(space: SearchSpace, train_settings=None,
                  final_settings=None):
  """The evaluator a space's `task` asks for."""
  task = space.proto.task
  if task in tasks.TOY_TASKS:
    return FunctionEvaluator(tasks.reward_fn_for(space))
  if task == IMAGE_TASK:
    if train_settings is None:
      raise GraphNasError("an image_classification space needs training "
                          "settings", source=space.source)
    return ChildEvaluator(train_settings, final_settings)
  raise GraphNasError(f"unknown task '{task}' (known: "
                      f"{', '.join(sorted(tasks.TOY_TASKS) + [IMAGE_TASK])})",
                      source=space.source)


def space_train_settings(space: SearchSpace, chosen: Dict,
                         retrain=None):
  """(search, final) TrainSettings of an image space's children: `chosen`
  (setting name -> value, graph_nas.child.settings.TrainSettings' names;
  the front end's choices) over the space's task_params (dataset,
  image_size, num_classes; a dataset chosen drops the space's class count)
  and the declared defaults. `retrain`: a RetrainSettings (default: the
  declared one). Raises SettingError naming the first bad setting."""
  from graph_nas.child.settings import RetrainSettings, TrainSettings
  params = image_task_params(space)
  chosen = dict(chosen)
  dataset = chosen.pop("dataset", None)
  values = {"dataset": dataset or params["dataset"],
            "image_size": params.get("image_size"),
            "num_classes": None if dataset else params.get("num_classes")}
  values.update({k: v for k, v in chosen.items()
                 if v is not None or k not in values})
  search = TrainSettings().replace(**values).check()
  return search, (retrain or RetrainSettings()).check().final(search)


def image_task_params(space: SearchSpace) -> Dict:
  """dataset, image_size, num_classes from an image space's task_params.

  Raises GraphNasError naming the space file for a value that is not an
  integer.
  """
  params = dict(space.proto.task_params)
  out = {"dataset": params.get("dataset", "cifar10")}
  for key in ("image_size", "num_classes"):
    if key in params:
      try:
        out[key] = int(params[key])
      except ValueError:
        raise GraphNasError(f"task_params {key}={params[key]!r} is not an "
                            "integer", source=space.source) from None
  return out


def dataset_of(space: SearchSpace) -> str:
  """The dataset an image space names in task_params (default cifar10)."""
  return image_task_params(space)["dataset"]
