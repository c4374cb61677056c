"""The paper's toy tasks (sections 4.1-4.2): rewards from a decoded config.

Both rewards read only the decoded config, so a graph space and its linear
form (hand-written or derived) share one reward. Rewards are in [0, 1].

Stack layers: the paper's reward is -(n - L)^2 for n layers; we normalise it
as max(0, 1 - (n - L)^2 / L^2): 1 at n = L, 0 at n = 0 and for n >= 2L. The
linear form counts the "add" decisions before its first "stop" (later
decisions change nothing), so it can build at most 2L layers.

Select optimizer: with M the index of the first p_i != 50, the paper's
reward is -(p_M - 50)^2 - sum_{i > M} 50^2 (0 when all four are 50). The
worst case, p_1 as far from 50 as the range [1, 100] allows, is
-(50^2) - 3 * 50^2 = -10000, so we report 1 + r / 10000.
"""

import functools
from typing import Callable, Dict

from graph_nas.errors import GraphNasError


def stack_layers_reward(config: dict, target_layers: int = 10) -> float:
  n = config.get("num_layers")
  if not isinstance(n, int):
    raise GraphNasError("stack_layers reward needs an int 'num_layers' in "
                        f"the config, got {config!r}")
  return max(0.0, 1.0 - (n - target_layers) ** 2 / target_layers ** 2)


def select_optimizer_raw_reward(config: dict, target_value: int = 50,
                                num_params: int = 4) -> float:
  try:
    params = [config[f"p{i}"] for i in range(1, num_params + 1)]
  except KeyError as e:
    raise GraphNasError(f"select_optimizer reward: config has no {e} "
                        f"(got {config!r})") from None
  for m, p in enumerate(params):
    if p != target_value:
      rest = num_params - m - 1
      return -float((p - target_value) ** 2) - rest * float(target_value) ** 2
  return 0.0


def select_optimizer_reward(config: dict, target_value: int = 50,
                            low: int = 1, high: int = 100) -> float:
  worst_dev = max(abs(low - target_value), abs(high - target_value))
  worst = worst_dev ** 2 + 3 * target_value ** 2
  return 1.0 + select_optimizer_raw_reward(config, target_value) / worst


TOY_TASKS: Dict[str, Callable[..., float]] = {
    "stack_layers": stack_layers_reward,
    "select_optimizer": select_optimizer_reward,
}


def reward_fn_for(space) -> Callable[[dict], float]:
  """The reward function of a toy space, with its task_params applied."""
  task = space.proto.task
  if task not in TOY_TASKS:
    raise GraphNasError(f"task '{task}' is not a toy task (known: "
                        f"{', '.join(sorted(TOY_TASKS))})",
                        source=space.source)
  params = dict(space.proto.task_params)
  kwargs = {}
  try:
    if task == "stack_layers":
      kwargs["target_layers"] = int(params.get("target_layers", 10))
    else:
      kwargs["target_value"] = int(params.get("target_value", 50))
  except ValueError as e:
    raise GraphNasError(f"bad task_params: {e}", source=space.source) \
        from None
  return functools.partial(TOY_TASKS[task], **kwargs)  # picklable
