"""Evaluators: what scores an architecture of a space.

A toy space (task "stack_layers" / "select_optimizer") is scored by its toy
reward; an image space (task "image_classification") by training a child
built with graph_nas.child on its dataset with graph_nas.train.
"""

from typing import Dict

from graph_nas import tasks
from graph_nas.errors import GraphNasError
from graph_nas.search import EvalResult, ToyEvaluator
from graph_nas.space import SearchSpace

IMAGE_TASK = "image_classification"


class ChildEvaluator:
  """Builds a MnasNet-like child from the config, trains it, scores it."""

  def __init__(self, settings, final_settings=None):
    """settings, final_settings: graph_nas.train.TrainSettings for search
    trials and for retraining the best child (default: settings scored on
    the test split)."""
    import dataclasses
    self.settings = settings
    self.final_settings = final_settings or dataclasses.replace(
        settings, eval_role="test")

  def evaluate(self, config: dict, trial_id: int, seed: int) -> EvalResult:
    from graph_nas import child, train
    del trial_id
    result = train.train_child(child.build_child, config, self.settings,
                               flops_fn=child.count_flops,
                               params_fn=child.count_params, seed=seed)
    metrics = dict(result.metrics)
    if result.details:
      metrics["traceback"] = result.details[-2000:]
    return EvalResult(result.status, result.reward, metrics, result.reason)

  def finalize(self, config: dict, out_dir: str, seed: int) -> Dict:
    """Retrains the best config, scores it on the test split, saves it."""
    from graph_nas import child, train
    built = {}

    def model_fn(cfg, **kwargs):
      built["model"] = child.build_child(cfg, **kwargs)
      return built["model"]

    result = train.train_child(model_fn, config, self.final_settings,
                               flops_fn=child.count_flops,
                               params_fn=child.count_params, seed=seed)
    out = {"status": result.status, "reason": result.reason,
           "test_accuracy": result.metrics.get("val_accuracy"),
           "metrics": result.metrics}
    if result.ok and "model" in built:
      out["files"] = child.save_child(built["model"], config, out_dir)
    return out


def evaluator_for(space: SearchSpace, train_settings=None):
  """The evaluator a space's `task` asks for."""
  task = space.proto.task
  if task in tasks.TOY_TASKS:
    return ToyEvaluator(tasks.reward_fn_for(space))
  if task == IMAGE_TASK:
    if train_settings is None:
      raise GraphNasError("an image_classification space needs training "
                          "settings", source=space.source)
    return ChildEvaluator(train_settings)
  raise GraphNasError(f"unknown task '{task}' (known: "
                      f"{', '.join(sorted(tasks.TOY_TASKS) + [IMAGE_TASK])})",
                      source=space.source)


def dataset_of(space: SearchSpace) -> str:
  """The dataset an image space names in task_params (default cifar10)."""
  return dict(space.proto.task_params).get("dataset", "cifar10")
