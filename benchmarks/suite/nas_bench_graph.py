"""NAS-Bench-Graph (Qin et al. 2022) as search spaces and rewards.

The benchmark's wheel (`pip install nas-bench-graph`, in the `bench` extra)
holds look-up tables of 26,206 graph neural network architectures on nine
data sets. An architecture has 4 computing nodes; node i takes its input
from node ``link[i]`` (0 is the input, j > 0 the j-th node; ``link[0]`` is
0) and applies one of 9 operations. Architectures are hashed up to
isomorphism by the benchmark's own ``Arch.valid_hash``; the four-skip
architectures are not in the table (reward 0, as in the benchmark's NNI
example).

Two encodings of the same 24 x 9^4 decisions:

- **linear** (the benchmark's NNI example ``Space_rl``): op0, lk1, op1,
  lk2, op2, lk3, op3 as independent choices in a fixed order;
- **graph**: the operation of node i is decided at a vertex that depends
  on where node i takes its input (``op2_from1`` is node 2's operation when
  it reads node 1), so a controller has one head per (node, input) pair.

Both decode to the same config ``{"lk1", "lk2", "lk3", "op0".."op3"}``.
"""

import functools
from typing import Dict, Optional, Tuple

from graph_nas.errors import GraphNasError
from graph_nas.space.builder import SpaceBuilder

OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
DATASETS = ("cora", "citeseer", "pubmed", "cs", "physics", "photo",
            "computers", "arxiv")
NODES = 4


def _package():
  try:
    import nas_bench_graph  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise GraphNasError("NAS-Bench-Graph tasks need the nas-bench-graph "
                        "package: pip install \".[bench]\"") from None
  return nas_bench_graph


def space(encoding: str):
  """The SearchSpace of the encoding ("linear" or "graph")."""
  if encoding not in ("linear", "graph"):
    raise GraphNasError(f"NAS-Bench-Graph encoding must be 'linear' or "
                        f"'graph', got {encoding!r}")
  b = SpaceBuilder(f"nas_bench_graph_{encoding}", start="op0",
                   max_steps=2 * NODES)
  b.vertex("op0").action("op", "lk1", key="op0", values=list(OPS))
  for i in range(1, NODES):
    after = f"lk{i + 1}" if i + 1 < NODES else "end"
    link = b.vertex(f"lk{i}")
    if encoding == "linear":
      link.action("from", f"op{i}", key=f"lk{i}", values=list(range(i + 1)))
      b.vertex(f"op{i}").action("op", after, key=f"op{i}", values=list(OPS))
      continue
    for j in range(i + 1):
      link.action(f"from{j}", f"op{i}_from{j}", key=f"lk{i}", value=j)
      b.vertex(f"op{i}_from{j}").action("op", after, key=f"op{i}",
                                        values=list(OPS))
  b.vertex("end")
  return b.build(source=f"<nas_bench_graph {encoding}>")


def architecture(config: Dict) -> Tuple[list, list]:
  """(link, ops) of a decoded config."""
  try:
    link = [0] + [int(config[f"lk{i}"]) for i in range(1, NODES)]
    ops = [str(config[f"op{i}"]) for i in range(NODES)]
  except KeyError as e:
    raise GraphNasError(f"NAS-Bench-Graph config has no {e} (got "
                        f"{config!r})") from None
  return link, ops


@functools.lru_cache(maxsize=None)
def table(dataset: str) -> Dict:
  """The benchmark's look-up table of `dataset` (hash -> record)."""
  if dataset not in DATASETS:
    raise GraphNasError(f"unknown NAS-Bench-Graph data set {dataset!r} "
                        f"(known: {', '.join(DATASETS)})")
  return _package().light_read(dataset)


def record(dataset: str, config: Dict) -> Optional[Dict]:
  """The table's record of the config's architecture (None: not in the
  table, the four-skip architectures)."""
  link, ops = architecture(config)
  h = _package().Arch(link, ops).valid_hash()
  return table(dataset).get(h)


class Reward:
  """Validation accuracy of a config on `dataset` (0 where the table has no
  record); `test(config)` is its test accuracy. Picklable."""

  def __init__(self, dataset: str):
    table(dataset)  # fails here, naming the data set, when it is unknown
    self.dataset = dataset

  def __call__(self, config: Dict) -> float:
    rec = record(self.dataset, config)
    return 0.0 if rec is None else float(rec["valid_perf"])

  def test(self, config: Dict) -> float:
    rec = record(self.dataset, config)
    return 0.0 if rec is None else float(rec["perf"])

  def optimum(self) -> float:
    """The best validation accuracy in the table (every architecture of
    the table is reachable in both encodings)."""
    return max(float(r["valid_perf"]) for r in table(self.dataset).values())
