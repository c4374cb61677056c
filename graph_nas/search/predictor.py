"""A learned predictor of a walk's reward, for screening any space.

Features (`WalkFeatures`): the decisions of the walk on the graph (a
linear twin's walk is replayed on its graph first), by vertex and visit:
for the k-th visit (k < MAX_VISITS) of vertex v, a one-hot of the action
taken (vertices with at most MAX_ONE_HOT actions), and the action's value
where it is a number (on a log scale for positive values spanning more
than a factor of 10); then each vertex's number of visits (a loop's
length) and the walk's length. Plain numpy, built from the space alone.

A user's features (`features=fn`, fn(config) -> a sequence of numbers of
one length; the `screen_features` setting) replace the walk's. The walk's decisions know nothing of what
makes two architectures alike (two walks of one isomorphic architecture
may share no feature); a user who knows the domain can say it, e.g. the
operations along each path from input to output (BANANAS' path encoding,
White et al. 2021; benchmarks/suite/nas_bench_graph.py: on
NAS-Bench-Graph a forest fit on 150 random architectures ranks the rest
with Spearman 0.51-0.66 on the paths against 0.26-0.39 on the walk, and
0.44-0.62 on both, benchmarks/README.md).

Model: scikit-learn's RandomForestRegressor, a bagged ensemble of trees.
Why: it fits tens to hundreds of points in milliseconds with no tuning of
scales, handles the mix of one-hot and numeric features, ignores the
features of vertices a walk did not visit (zeros), and the spread of its
trees' predictions is the uncertainty an acquisition needs (as in SMAC).
An ensemble of small Keras MLPs (BANANAS) costs seconds per refit on this
CPU and needs TensorFlow, which the default searcher does not load.

Acquisition: upper confidence, mean + `kappa` * the trees' standard
deviation (kappa chosen on the suite's tuning seeds, benchmarks/). The
forest is refit on a schedule (`fit_size`): when the trials known have
grown by `refit_growth` (10 %), at least by one, since the last fit.

Time (`cost_weight` w > 0, the `screen_cost_weight` setting): a second
forest, on the same features, predicts log2 of each trial's seconds for
its whole budget (History.seconds), and the score becomes
    mean + kappa * std - w * (predicted log2 seconds - median log2 seconds
                              of the trials it was fit on),
so a child predicted twice as slow must be predicted w better. This is
the cost-aware acquisition of Snoek et al. 2012 ("expected improvement
per second"), written as a penalty in reward units so that it composes
with the upper confidence and its weight reads as a price. Measured once
(the demo, seed 0, W = 0.05): smaller children were picked and the search
was 13 % shorter, but the best child was no better
(benchmarks/results/cifar_cpu_demo.md); W is not tuned, and 0 is the
default.
"""

import math
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from graph_nas.errors import GraphNasError
from graph_nas.search.screening import History, PREDICTOR, Scorer

MAX_VISITS = 8
MAX_ONE_HOT = 32


class WalkFeatures:
  """Fixed-length feature vectors of walks of one space (module doc)."""

  def __init__(self, space):
    self.space = space
    self.graph = getattr(space, "graph", space)
    g = self.graph
    self.columns: List[str] = []
    self._onehot: Dict[tuple, int] = {}
    self._numeric: Dict[tuple, int] = {}
    self._visits: Dict[int, int] = {}
    self._values: Dict[int, Optional[np.ndarray]] = {}
    for v, edges in enumerate(g.edges):
      if g.terminal[v] or not len(edges):
        continue
      values = [e.value for e in edges]
      numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool)
                    for x in values) and len(values) >= 2
      arr = None
      if numeric:
        arr = np.asarray(values, np.float64)
        if (arr > 0).all() and arr.max() / arr.min() > 10:
          arr = np.log(arr)
      self._values[v] = arr
      name = g.vertex_names[v]
      for k in range(MAX_VISITS):
        if len(edges) <= MAX_ONE_HOT and len(edges) > 1:
          for a in range(len(edges)):
            self._onehot[(v, k, a)] = len(self.columns)
            self.columns.append(f"{name}[{k}]={edges[a].name}")
        if arr is not None or len(edges) > MAX_ONE_HOT:
          self._numeric[(v, k)] = len(self.columns)
          self.columns.append(f"{name}[{k}]")
        if len(edges) <= 1 and arr is None:
          break  # a vertex with one action decides nothing
      self._visits[v] = len(self.columns)
      self.columns.append(f"visits({name})")
    self._length = len(self.columns)
    self.columns.append("steps")

  def graph_actions(self, walk: Sequence[int]) -> List[int]:
    if self.graph is not self.space:
      from graph_nas.space import linear  # pylint: disable=import-outside-toplevel
      return linear.replay(self.graph, self.space.slots, walk)
    return [int(a) for a in walk]

  def __call__(self, walks: Sequence[Sequence[int]]) -> np.ndarray:
    g = self.graph
    x = np.zeros((len(walks), len(self.columns)), np.float32)
    for row, walk in enumerate(walks):
      cur, seen = g.start, {}
      actions = self.graph_actions(walk)
      for a in actions:
        k = seen.get(cur, 0)
        seen[cur] = k + 1
        if k < MAX_VISITS:
          j = self._onehot.get((cur, k, a))
          if j is not None:
            x[row, j] = 1.0
          j = self._numeric.get((cur, k))
          if j is not None:
            arr = self._values.get(cur)
            x[row, j] = arr[a] if arr is not None else a
        cur = int(g.next_vertex[cur, a])
      for v, count in seen.items():
        j = self._visits.get(v)
        if j is not None:
          x[row, j] = count
      x[row, self._length] = len(actions)
    return x


class PredictorScorer(Scorer):
  """Screens with a random forest fit on the search's finished trials.

  Args:
    space: the searched space (graph or linear twin).
    seed: the forest's seed.
    min_trials: trials the forest needs before it scores (ready()).
    kappa: weight of the trees' spread in the score (upper confidence).
    trees: trees of the forest.
    refit_growth: growth of the trials known that triggers a refit.
    cost_weight: reward a child predicted twice as slow must make up
      (module doc); 0: time is ignored.
    features: a function of the decoded config giving numbers of one
      length, the features in place of the walk's (module doc); None:
      the walk's decisions.
  """

  name = PREDICTOR

  def __init__(self, space, *, seed: int = 0, min_trials: int = 10,
               kappa: float = 0.5, trees: int = 48,
               refit_growth: float = 0.1, cost_weight: float = 0.0,
               features: Optional[Callable[[dict], Sequence[float]]] = None):
    if not (math.isfinite(cost_weight) and cost_weight >= 0):
      raise ValueError(f"cost_weight must be >= 0, got {cost_weight}")
    if features is not None and not callable(features):
      raise GraphNasError(f"features must be a function of the config, got "
                          f"{type(features).__name__}")
    self.user_features = features
    self._user_width: Optional[int] = None
    self.cost_weight = float(cost_weight)
    self._time_model = None
    self._time_median = 0.0
    self.features = WalkFeatures(space)
    self.seed, self.min_trials = int(seed), int(min_trials)
    self.kappa, self.trees = float(kappa), int(trees)
    self.refit_growth = float(refit_growth)
    self._model = None
    self._fitted_on = 0
    self._cache: Dict[tuple, np.ndarray] = {}

  def ready(self, history: History) -> bool:
    return len(history) >= self.min_trials

  def _user_row(self, config: dict) -> np.ndarray:
    """The user's features of one config, checked."""
    name = getattr(self.user_features, "__name__", "features")
    try:
      row = np.asarray(self.user_features(config), np.float64).reshape(-1)
    except Exception as e:  # pylint: disable=broad-except
      raise GraphNasError(f"predictor features {name} failed on {config}: "
                          f"{type(e).__name__}: {e}") from e
    if self._user_width is None:
      self._user_width = row.shape[0]
    if row.shape[0] != self._user_width or not np.isfinite(row).all():
      raise GraphNasError(
          f"predictor features {name} must give {self._user_width} finite "
          f"numbers for every config; got {row.tolist()} for {config}")
    return row.astype(np.float32)

  def _x(self, walks, configs=None) -> np.ndarray:
    """The feature rows of the walks (configs: their decoded configs,
    needed with user features)."""
    out = []
    for i, w in enumerate(walks):
      w = tuple(int(a) for a in w)
      row = self._cache.get(w)
      if row is None:
        if self.user_features is None:
          row = self.features([w])[0]
        else:
          row = self._user_row(configs[i] if configs is not None else
                               self.features.space.decode(w))
        self._cache[w] = row
      out.append(row)
    width = (len(self.features.columns) if self.user_features is None
             else self._user_width or 0)
    return np.stack(out) if out else np.zeros((0, width), np.float32)

  def _forest(self, walks, y, seed: int, configs=None):
    """A random forest fit on (walks, y)."""
    from sklearn.ensemble import RandomForestRegressor  # pylint: disable=import-outside-toplevel
    model = RandomForestRegressor(
        n_estimators=self.trees, min_samples_leaf=1, max_features=0.5,
        bootstrap=True, random_state=seed, n_jobs=1)
    model.fit(self._x(walks, configs), y)
    return model

  def fit(self, history: History, n: Optional[int] = None) -> None:
    """Fits the forest on the first n trials of the history (all), and
    the time forest when cost_weight > 0."""
    n = len(history) if n is None else n
    walks, configs = history.walks[:n], history.configs[:n]
    y = np.asarray(history.rewards[:n], np.float64)
    keep = np.isfinite(y)
    self._model = self._forest([w for w, k in zip(walks, keep) if k],
                               y[keep], self.seed,
                               [c for c, k in zip(configs, keep) if k])
    self._fitted_on = n
    self._time_model = None
    if self.cost_weight > 0:
      t = np.asarray(history.seconds[:n], np.float64)
      ok = np.isfinite(t) & (t > 0)
      if ok.sum() >= 2:
        logt = np.log2(t[ok])
        self._time_median = float(np.median(logt))
        self._time_model = self._forest(
            [w for w, k in zip(walks, ok) if k], logt, self.seed + 1,
            [c for c, k in zip(configs, ok) if k])

  def fit_size(self, n: int) -> int:
    """The trials the forest is fit on when n are known: the largest point
    of the refit schedule (min_trials, then each point grown by
    refit_growth, at least by one) not above n. A function of n alone, so
    a resumed search fits what the uninterrupted one did."""
    point = self.min_trials
    while True:
      nxt = max(point + 1, math.ceil(point * (1 + self.refit_growth)))
      if nxt > n:
        return point
      point = nxt

  def _per_tree(self, model, walks, configs=None) -> np.ndarray:
    """[trees, walks]: each tree's prediction."""
    # Each tree's own arrays (what DecisionTreeRegressor.predict returns,
    # without its per-call input checks: half of a screened search's time).
    x = np.ascontiguousarray(self._x(walks, configs), np.float32)
    return np.stack([t.tree_.predict(x)[:, 0] for t in model.estimators_])

  def predict(self, walks, configs=None) -> tuple:
    """(mean, standard deviation over trees) of each walk's reward."""
    per_tree = self._per_tree(self._model, walks, configs)
    return per_tree.mean(0), per_tree.std(0)

  def predict_log2_seconds(self, walks, configs=None) -> Optional[np.ndarray]:
    """Each walk's predicted log2 seconds for its whole budget, minus the
    median of the trials fit on (None: no time model, cost_weight 0 or
    fewer than two timed trials)."""
    if self._time_model is None:
      return None
    return self._per_tree(self._time_model, walks, configs).mean(0) - \
        self._time_median

  def score(self, walks, configs, history):
    n = self.fit_size(len(history))
    if self._model is None or n != self._fitted_on:
      self.fit(history, n)
    mean, std = self.predict(walks, configs)
    score = mean + self.kappa * std
    slower = self.predict_log2_seconds(walks, configs)
    if slower is not None:
      score = score - self.cost_weight * slower
    if self.user_features is not None:
      # The user's features name the architecture: a candidate whose
      # features equal a finished trial's is that trial again (e.g. an
      # isomorphic twin), scored last.
      seen = {self._x([w], [c])[0].tobytes()
              for w, c in zip(history.walks, history.configs)}
      x = self._x(walks, configs)
      score = np.where([row.tobytes() in seen for row in x], np.nan, score)
    return score
