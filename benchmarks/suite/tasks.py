"""The search-quality suite's tasks.

A task is a space, a reward read from the decoded config, the reward's
known optimum and, where the task has one, a held-out score of the same
config (NAS-Bench-Graph's test accuracy). Names:

- ``stack_layers``, ``select_optimizer_b2``, ``select_optimizer_b4``: the
  paper's toy tasks on their shipped graph spaces, and ``..._linear`` on
  the shipped linear forms (`graph_nas.search.tasks` holds the rewards);
- ``nbg_<dataset>_linear`` / ``nbg_<dataset>_graph``: NAS-Bench-Graph
  (`benchmarks.suite.nas_bench_graph`), validation accuracy as the reward.
"""

import dataclasses
import functools
from typing import Callable, Optional, Tuple

from graph_nas import space as space_lib
from benchmarks.suite import nas_bench_graph as nbg
from graph_nas.errors import GraphNasError
from graph_nas.search import tasks as toy

TOY = ("stack_layers", "select_optimizer_b2", "select_optimizer_b4")
NBG_DATASETS = ("cora", "citeseer", "pubmed")
ENCODINGS = ("graph", "linear")


@dataclasses.dataclass(frozen=True)
class Task:
  """One suite task.

  Attributes:
    name: e.g. "stack_layers_linear", "nbg_cora_graph".
    family: the task without its encoding ("stack_layers", "nbg_cora").
    encoding: "graph" or "linear".
    space: the graph_nas.space.SearchSpace searched.
    reward: config -> float, the search's reward.
    optimum: the best reward the space holds.
    test: config -> float, a held-out score (None: the task has none).
    features: config -> numbers, the domain's features for the predictor
      (graph_nas.search.predictor; None: the task has none).
  """
  name: str
  family: str
  encoding: str
  space: object
  reward: Callable[[dict], float]
  optimum: float
  test: Optional[Callable[[dict], float]] = None
  features: Optional[Callable[[dict], list]] = None


def names(families: Tuple[str, ...] = TOY + tuple(
    f"nbg_{d}" for d in NBG_DATASETS)) -> Tuple[str, ...]:
  """Every task name of the families, graph encoding first."""
  return tuple(f"{f}_{e}" if e == "linear" or f.startswith("nbg_")
               else f for f in families for e in ENCODINGS)


@functools.lru_cache(maxsize=None)
def get(name: str) -> Task:
  """The task called `name` (see the module doc)."""
  encoding = "linear" if name.endswith("_linear") else "graph"
  family = name[:-len("_linear")] if encoding == "linear" else name
  if family.startswith("nbg_"):
    if family.endswith("_graph"):
      family = family[:-len("_graph")]
    elif encoding == "graph":
      raise GraphNasError(f"task {name!r}: a NAS-Bench-Graph task ends in "
                          "_graph or _linear")
    reward = nbg.Reward(family[len("nbg_"):])
    return Task(name, family, encoding, nbg.space(encoding), reward,
                reward.optimum(), reward.test, nbg.path_features)
  if family not in TOY:
    raise GraphNasError(f"unknown task {name!r} (known: "
                        f"{', '.join(names())})")
  shipped = family + ("_linear" if encoding == "linear" else "")
  space = space_lib.load(space_lib.find(shipped))
  return Task(name, family, encoding, space, toy.reward_fn_for(space), 1.0)
