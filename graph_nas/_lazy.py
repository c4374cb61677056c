"""A package's `__getattr__` that lends it the names of one of its modules.

`graph_nas.search.Search` is `graph_nas.search.loop.Search`, imported only
when asked for: the package's other modules (its settings) import without
what the main module imports (TensorFlow).
"""

import importlib
import os


def lend(package: str, path: str, module: str):
  """The `__getattr__` of `package` (its `__file__` is `path`): a submodule
  or sub-package by its name, any other name from `package.module`."""
  here = os.path.dirname(path)

  def __getattr__(name):  # pylint: disable=invalid-name
    if os.path.exists(os.path.join(here, name + ".py")) or os.path.exists(
        os.path.join(here, name, "__init__.py")):
      return importlib.import_module(f"{package}.{name}")
    if name.startswith("__"):
      raise AttributeError(name)
    try:
      return getattr(importlib.import_module(f"{package}.{module}"), name)
    except AttributeError:
      raise AttributeError(f"module {package!r} has no attribute "
                           f"{name!r}") from None
  return __getattr__
