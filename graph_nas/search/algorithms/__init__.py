"""Search algorithms behind one interface, one module per searcher.

| module | what it holds | needs |
|---|---|---|
| `base` | `Algorithm` (propose, update, save / load, no repeats); `check_declared` | numpy |
| `random_search` | `RandomSearch`: a uniform choice at every vertex | numpy |
| `evolution` | `RegularizedEvolution` (the default searcher), its population and mutation | numpy |
| `reinforce` | `Reinforce` and the learning algorithms' controller machinery | TensorFlow |
| `pqt` | `PriorityQueueTraining` | TensorFlow |

`make_algorithm(name, space, ...)` imports only the module of the algorithm
it makes: evolution and random search load no TensorFlow. Every class is
also `graph_nas.search.algorithms.<Name>`, imported when first asked for;
`ALGORITHMS` (name -> class) imports them all.
"""

import importlib

from graph_nas.errors import GraphNasError
from graph_nas.search.algorithms.base import Algorithm, check_declared
from graph_nas.space import SearchSpace

# An algorithm's name -> (its module, its class).
_HOMES = {"reinforce": ("reinforce", "Reinforce"),
          "pqt": ("pqt", "PriorityQueueTraining"),
          "random": ("random_search", "RandomSearch"),
          "evolution": ("evolution", "RegularizedEvolution")}
# Names lent from the modules (a class, or what the one-module version of
# this package held): name -> module.
_LENT = {**{cls: module for module, cls in _HOMES.values()},
         "_ControllerAlgorithm": "reinforce"}
_MODULES = ("base", "random_search", "evolution", "reinforce", "pqt")

__all__ = ["Algorithm", "ALGORITHMS", "PriorityQueueTraining",
           "RandomSearch", "RegularizedEvolution", "Reinforce",
           "algorithm_class", "check_declared", "make_algorithm"]


def algorithm_class(name: str):
  """The class of the algorithm called `name` (its module imported)."""
  if name not in _HOMES:
    raise GraphNasError(f"unknown algorithm '{name}' (known: "
                        f"{', '.join(sorted(_HOMES))})")
  module, cls = _HOMES[name]
  return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def make_algorithm(name: str, space: SearchSpace, seed: int = 0,
                   **kwargs) -> Algorithm:
  """Builds an algorithm by name; kwargs that it does not take are ignored
  for random search (evolution takes population_size, tournament_size and
  loop_mutation_prob)."""
  cls = algorithm_class(name)
  if name == "random":
    return cls(space, seed)
  return cls(space, seed=seed, **kwargs)


def __getattr__(name):  # pylint: disable=invalid-name
  if name in _MODULES:
    return importlib.import_module(f"{__name__}.{name}")
  if name == "ALGORITHMS":
    return {algo: algorithm_class(algo) for algo in _HOMES}
  if name in _LENT:
    return getattr(importlib.import_module(f"{__name__}.{_LENT[name]}"),
                   name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
