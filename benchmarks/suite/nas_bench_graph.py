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

`path_features(config)`: the predictor's domain features
(`graph_nas.search.predictor.PredictorScorer(features=...)`), the same
for every encoding and every isomorphic architecture: the operations
along each path from the input to an output node, skips removed (BANANAS'
path encoding, White et al. 2021, summarised by position and by pairs).
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


def paths(link, ops) -> list:
  """The operations from the input to each output node (a node no other
  reads), in order, skips removed: one tuple per output node whose path
  holds an operation (the benchmark's hash, `Arch.valid_hash`, ignores a
  path of skips alone)."""
  read = {link[i] - 1 for i in range(1, NODES) if link[i] > 0}
  out = []
  for leaf in range(NODES):
    if leaf in read:
      continue
    chain, node = [], leaf
    while node >= 0:
      chain.append(ops[node])
      node = link[node] - 1
    path = tuple(o for o in reversed(chain) if o != "skip")
    if path:
      out.append(path)
  return out


_REAL = OPS[:-1]
PATH_FEATURES = (
    [f"at{d}={o}" for d in range(NODES) for o in _REAL] +
    [f"{a}>{b}" for a in _REAL for b in _REAL] +
    [f"count={o}" for o in _REAL] +
    [f"paths_of_length={n}" for n in range(1, NODES + 1)] + ["paths"])


def path_features(config: Dict) -> list:
  """Numbers describing the architecture by its paths (PATH_FEATURES):
  per operation, how many paths hold it at each depth; per pair, how many
  times one follows the other on a path; per operation, how many nodes
  hold it; how many paths of each length; how many paths."""
  link, ops = architecture(config)
  index = {o: i for i, o in enumerate(_REAL)}
  n = len(_REAL)
  x = [0.0] * len(PATH_FEATURES)
  pair0 = NODES * n
  count0 = pair0 + n * n
  length0 = count0 + n
  ps = paths(link, ops)
  for p in ps:
    for d, o in enumerate(p):
      x[d * n + index[o]] += 1
    for a, b in zip(p, p[1:]):
      x[pair0 + index[a] * n + index[b]] += 1
    x[length0 + len(p) - 1] += 1
  for o in ops:
    if o != "skip":
      x[count0 + index[o]] += 1
  x[-1] = len(ps)
  return x


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
