"""Imports run downward: what a package imports, read from its source and
seen in a fresh interpreter."""

import ast
import json
import subprocess
import sys

import pytest

from tests.conftest import PROTOS, ROOT

PACKAGE = ROOT / "graph_nas"


def _imported(path):
  """The modules a source file imports (any depth: a function's lazy
  import counts), as dotted names; `from a import b` gives a.b too."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return names


def _imports_of(folder, forbidden):
  """{file: [forbidden modules it imports]} of the package's `folder`."""
  found = {}
  for path in sorted((PACKAGE / folder).rglob("*.py")):
    bad = sorted(n for n in _imported(path)
                 if any(n == f or n.startswith(f + ".") for f in forbidden))
    if bad:
      found[str(path.relative_to(ROOT))] = bad
  return found


@pytest.mark.parametrize("folder,forbidden", [
    ("search", ("graph_nas.report",)),  # the front ends attach the reports
    ("child", ("graph_nas.search", "graph_nas.report")),
    ("space", ("graph_nas.search", "graph_nas.child", "graph_nas.report")),
])
def test_a_package_imports_nothing_above_it(folder, forbidden):
  assert _imports_of(folder, forbidden) == {}


def _fresh(code):
  """What `code` prints as JSON, run in a fresh interpreter."""
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                       capture_output=True, text=True, timeout=300).stdout
  return json.loads(out.strip().splitlines()[-1])


def test_the_search_loads_without_the_reports():
  loaded = _fresh(
      "import json, sys\n"
      "import graph_nas.search.loop, graph_nas.search.assemble\n"
      "import graph_nas.search.observers\n"
      "print(json.dumps(sorted(m for m in sys.modules\n"
      "                        if m.startswith('graph_nas.report'))))\n")
  assert loaded == []


def test_the_default_searcher_and_random_search_load_no_tensorflow():
  """Evolution (the default) and random search propose walks in plain
  numpy: TensorFlow is not imported (REINFORCE and PQT import it when
  made)."""
  seen = _fresh(
      "import json, sys\n"
      "from graph_nas import space as space_lib\n"
      "from graph_nas.search import algorithms\n"
      f"space = space_lib.load({str(PROTOS / 'stack_layers.textproto')!r})\n"
      "evolution = algorithms.make_algorithm('evolution', space, seed=0,\n"
      "                                      population_size=4,\n"
      "                                      tournament_size=2)\n"
      "walks = evolution.propose(6)\n"
      "evolution.update(walks, [0.1 * i for i in range(6)])\n"
      "walks += evolution.propose(2)\n"
      "walks += algorithms.RandomSearch(space, seed=0).propose(2)\n"
      "for walk in walks:\n"
      "  space.check_walk(walk)\n"
      "print(json.dumps({'walks': len(walks),\n"
      "                  'tensorflow': 'tensorflow' in sys.modules,\n"
      "                  'keras': 'keras' in sys.modules}))\n")
  assert seen == {"walks": 10, "tensorflow": False, "keras": False}
