"""Search algorithms behind one interface: REINFORCE, PQT, random search,
regularized evolution.

An :class:`Algorithm` proposes walks (tuples of per-vertex action indices),
takes their rewards in :meth:`Algorithm.update`, and exposes its whole state
(controller weights, optimizer slots, baseline, priority queue, random
state, entropy convention) for checkpointing with :meth:`save` /
:meth:`load`.

REINFORCE and PQT minimise the one loss of :mod:`graph_nas.search.losses`:

  pg_weight * -mean((R - b) * log p(walk)) - beta * mean(H(walk))
  + queue_weight * -mean(log p(queue walk))

REINFORCE: pg_weight 1, queue_weight 0, with b an exponential moving average
of rewards (initialised to the first batch mean); Adam. With
``normalize_advantages`` (the default) R - b is divided by the standard
deviation of every reward seen so far: a task whose rewards differ in the
third decimal (validation accuracies 0.80-0.82) then moves the controller
as much as one whose rewards span [0, 1]; without it (the paper's
controller) the step scales with the rewards' spread, and at lr 1e-3 such a
controller hardly moves in a few hundred trials.

Priority Queue Training (Abolafia et al. 2018): keep the K best unique walks
seen; queue_weight 1, plus pg_weight * the REINFORCE term (default 1; 0 is
pure queue training).

Entropy convention (``entropy_mode``): H(walk) above is, with H_t the
entropy of the action distribution at the walk's t-th step, at vertex v_t
with |A_{v_t}| actions, and T the walk's number of steps:

  "sum" (default):  sum_t H_t
  "mean":           (1 / T) sum_t H_t
  "normalized":     (1 / T) sum_t H_t / log |A_{v_t}|, in [0, 1] (a vertex
                    with one action contributes 0; its step counts in T)

Under "sum", beta is weighed against a sum of log |A_v| terms (about 23 for
five 100-way vertices) while rewards are in [0, 1]; "normalized" puts the
entropy on the rewards' scale whatever the walk length and action counts.
A checkpoint records the mode; loading it into an algorithm with another
mode is an error. The checkpoint's file format is
:mod:`graph_nas.search.checkpoint`'s.

Non-finite rewards: their walks are dropped from the update (the loss gives
them weight 0), they do not enter the baseline or the queue; an empty queue
contributes nothing.

No repeats (``no_repeats``, the learning algorithms and evolution): a
proposal whose architecture (its decoded config) this search has already
proposed is drawn again -- a controller samples more walks and keeps the
unseen ones, evolution mutates again -- up to a bounded number of tries,
after which a repeat is accepted. The search loop counts a repeat as a
trial (it reuses the stored reward), so at a budget of a few hundred
trials a converged controller or a population of near-copies would
otherwise spend much of it on architectures it already knows.

Random search: uniform choice at every visited vertex (no learning).

Regularized evolution (Real et al. 2019): aging evolution over walks, a
tournament of S picks the parent, a mutation that follows the graph makes
the child, the oldest of P leaves; the population and the mutation are
:mod:`graph_nas.search.evolution`'s. Non-finite rewards join the population
as its worst.
"""

import abc
import json
import math
from typing import Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from graph_nas.errors import GraphNasError
from graph_nas.search import checkpoint, evolution, losses
from graph_nas.search.controller import ENTROPY_MODES, DynamicController
from graph_nas.search.priority_queue import TopKQueue
from graph_nas.space.base import Actions
from graph_nas.search.settings import ALGORITHM_DEFAULTS, AlgorithmSettings
from graph_nas.search.settings import defaults as _declared
from graph_nas.search.store import config_key
from graph_nas.space import SearchSpace

# The declared defaults (graph_nas.search.settings), not numbers said again
# here.
_D = _declared(AlgorithmSettings)


class Algorithm(abc.ABC):
  """Propose walks; update with rewards; save and restore all state."""

  name = "algorithm"

  def __init__(self, space: SearchSpace, seed: int = 0):
    self.space = space
    self.seed = seed
    self.num_updates = 0
    # no_repeats (module doc): the algorithms that take the setting set it;
    # _seen holds the store's config keys of every walk proposed.
    self.no_repeats = False
    self._seen = set()

  def reset(self, seed: int) -> None:
    """Back to the state a new algorithm of `seed` starts in. Subclasses
    that keep more state extend it; `reusable` says whether one does."""
    self.seed = seed
    self.num_updates = 0
    self._seen = set()

  # True where reset() restores everything (graph_nas.bench.driver then
  # reuses the object, and its traced functions, across seeds).
  reusable = False

  @abc.abstractmethod
  def propose(self, n: int) -> List[Actions]:
    """Proposes n walks."""

  @abc.abstractmethod
  def update(self, walks: Sequence[Actions], rewards: Sequence[float]) -> Dict:
    """Learns from finished walks; returns scalar stats."""

  def state(self) -> Tuple[Dict[str, np.ndarray], Dict]:
    """(numpy arrays, JSON-able metadata) that restore this algorithm."""
    meta = {"num_updates": self.num_updates, checkpoint.NAME_KEY: self.name}
    if self.no_repeats:
      meta["seen"] = sorted(self._seen)
    return {}, meta

  def restore(self, arrays: Dict[str, np.ndarray], meta: Dict) -> None:
    name = meta.get(checkpoint.NAME_KEY)
    if name != self.name:
      raise GraphNasError(f"checkpoint is of algorithm '{name}',"
                          f" not '{self.name}'")
    self.num_updates = int(meta["num_updates"])
    if self.no_repeats:
      self._seen = set(meta.get("seen", []))

  # ------------------------------------------------------------ repeats
  def _key(self, walk) -> str:
    """What makes two walks the same architecture: the store's key of the
    decoded config, the one the loop reuses results by (a walk that does
    not decode: its actions)."""
    try:
      config = self.space.decode(walk)
    except GraphNasError:
      return "walk:" + json.dumps([int(a) for a in walk])
    return config_key(config)

  def _unseen(self, walk) -> bool:
    """True, and remembers it, when the walk's architecture is new (a walk
    that decodes)."""
    key = self._key(walk)
    # A walk that does not decode (max_steps cut it) is never "new": it is
    # drawn again like a repeat, so no_repeats does not favour failing walks.
    if key.startswith("walk:") or key in self._seen:
      return False
    self._seen.add(key)
    return True

  def forget(self, walks) -> None:
    """no_repeats forgets these walks' architectures (proposed, then
    screened out: never evaluated, so they may be proposed again)."""
    for walk in walks:
      self._seen.discard(self._key(walk))

  def save(self, path: str, extra: Optional[Dict] = None) -> None:
    """Writes the whole state (and a JSON-able `extra`, returned by load) to
    one .npz file, atomically."""
    arrays, meta = self.state()
    checkpoint.write(path, arrays, meta, extra)

  def load(self, path: str) -> Dict:
    """Restores what save wrote; returns its `extra`."""
    arrays, meta = checkpoint.read(path)
    self.restore(arrays, meta)
    return meta.get(checkpoint.EXTRA_KEY, {})


class RandomSearch(Algorithm):
  """Uniform choice at every visited vertex."""

  name = "random"

  def __init__(self, space: SearchSpace, seed: int = 0):
    super().__init__(space, seed)
    self.rng = np.random.default_rng(seed)

  def propose(self, n):
    return [self.space.sample_random(self.rng).actions for _ in range(n)]

  def update(self, walks, rewards):
    self.num_updates += 1
    return {}

  def state(self):
    arrays, meta = super().state()
    meta["rng"] = self.rng.bit_generator.state
    return arrays, meta

  def restore(self, arrays, meta):
    super().restore(arrays, meta)
    self.rng.bit_generator.state = meta["rng"]


class _ControllerAlgorithm(Algorithm):
  """Shared machinery of the learning algorithms."""

  def __init__(self, space: SearchSpace, seed: int = 0,
               learning_rate: float = _D["learning_rate"],
               entropy_weight: float = ALGORITHM_DEFAULTS["reinforce"][
                   "entropy_weight"],
               embedding_dim: int = _D["embedding_dim"],
               hidden_dim: int = _D["hidden_dim"],
               controller: Optional[DynamicController] = None,
               entropy_mode: str = _D["entropy_mode"],
               value_features: int = _D["value_features"],
               no_repeats: bool = _D["no_repeats"],
               normalize_advantages: bool = _D["normalize_advantages"]):
    super().__init__(space, seed)
    self.no_repeats = bool(no_repeats)
    self.normalize_advantages = bool(normalize_advantages)
    if learning_rate <= 0:
      raise GraphNasError(f"learning_rate must be > 0, got {learning_rate}")
    if entropy_weight < 0:
      raise GraphNasError(f"entropy_weight must be >= 0, got "
                          f"{entropy_weight}")
    if entropy_mode not in ENTROPY_MODES:
      raise GraphNasError(f"entropy_mode must be one of "
                          f"{', '.join(ENTROPY_MODES)}, got '{entropy_mode}'")
    self.entropy_mode = entropy_mode
    if value_features < 0 or value_features == 1:
      raise GraphNasError(f"value_features must be 0 (the paper's "
                          f"controller) or >= 2, got {value_features}")
    self._controller_args = dict(embedding_dim=embedding_dim,
                                 hidden_dim=hidden_dim,
                                 value_features=value_features)
    self.controller = controller or DynamicController(
        space, seed=seed, **self._controller_args)
    self.entropy_weight = entropy_weight
    self.optimizer = keras.optimizers.Adam(learning_rate)
    self.optimizer.build(self.controller.trainable_variables)
    self._fresh_optimizer = [np.asarray(v.numpy())
                             for v in self.optimizer.variables]

  def reset(self, seed: int) -> None:
    """What a new algorithm of `seed` (same settings) would be, in place:
    the controller's and Adam's traced steps are kept, so a benchmark that
    runs many seeds traces them once (tests/test_bench.py checks that a
    reset algorithm proposes what a new one does)."""
    super().reset(seed)
    fresh = DynamicController(self.space, seed=seed, **self._controller_args)
    self.controller.set_weights(fresh.get_weights())
    self.controller.rng.reset_from_seed(seed)
    for v, value in zip(self.optimizer.variables, self._fresh_optimizer):
      v.assign(value)

  # Walks sampled per wanted walk when repeats are refused, and rounds.
  REPEAT_OVERSAMPLE = 4
  REPEAT_ROUNDS = 3

  def propose(self, n):
    if not self.no_repeats:
      return self.controller.sample(n)
    out, spare = [], []
    for _ in range(self.REPEAT_ROUNDS):
      for walk in self.controller.sample(max(8, self.REPEAT_OVERSAMPLE * n)):
        if len(out) == n:
          break
        (out if self._unseen(walk) else spare).append(walk)
      if len(out) == n:
        return out
    return out + spare[:n - len(out)]  # the controller knows little else

  def _pad(self, walks):
    return self.controller.pad_walks(walks)

  @tf.function(reduce_retracing=True)
  def _train_step(self, actions, lengths, rewards, baseline, q_actions,
                  q_lengths, pg_weight, entropy_weight, queue_weight,
                  has_queue):
    """One Adam step on :func:`graph_nas.search.losses.loss` (has_queue: a Python
    bool; without a queue the queue term is absent)."""
    with tf.GradientTape() as tape:
      logp, ent = self.controller._replay(actions, lengths,
                                          self.entropy_mode)
      q_logp = self.controller._replay(q_actions, q_lengths)[0] \
          if has_queue else None
      terms = losses.loss(logp, ent, rewards, baseline, pg_weight,
                          entropy_weight, queue_weight, q_logp)
    variables = self.controller.trainable_variables
    grads = tape.gradient(terms.total, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    return terms

  def _step(self, walks, rewards, baseline, queue_walks, pg_weight,
            queue_weight):
    actions, lengths = self._pad(walks)
    # Without a queue a placeholder (never replayed: a replay of zero walks
    # does not trace, LSTMCell) keeps the arguments' types.
    q_actions, q_lengths = self._pad(queue_walks or walks[:1])
    return self._train_step(
        actions, lengths, tf.constant(rewards, tf.float32),
        tf.constant(baseline, tf.float32), q_actions, q_lengths,
        tf.constant(pg_weight, tf.float32),
        tf.constant(self.entropy_weight, tf.float32),
        tf.constant(queue_weight, tf.float32), bool(queue_walks))

  def state(self):
    arrays, meta = super().state()
    meta["entropy_mode"] = self.entropy_mode
    for i, w in enumerate(self.controller.get_weights()):
      arrays[checkpoint.controller_key(i)] = w
    for i, v in enumerate(self.optimizer.variables):
      arrays[checkpoint.optimizer_key(i)] = np.asarray(v.numpy())
    arrays[checkpoint.RNG_STATE_KEY] = self.controller.rng.state.numpy()
    return arrays, meta

  def restore(self, arrays, meta):
    super().restore(arrays, meta)
    mode = meta.get("entropy_mode", "sum")  # older checkpoints: "sum"
    if mode != self.entropy_mode:
      raise GraphNasError(f"checkpoint was written with entropy_mode "
                          f"'{mode}', this algorithm has "
                          f"'{self.entropy_mode}'")
    weights = self.controller.get_weights()
    n = checkpoint.num_controller_weights(arrays)
    if n != len(weights):
      raise GraphNasError(f"checkpoint has {n} controller weights, the "
                          f"controller has {len(weights)}: was it written "
                          "for another search space?")
    try:
      self.controller.set_weights(checkpoint.controller_weights(arrays))
      for i, v in enumerate(self.optimizer.variables):
        v.assign(arrays[checkpoint.optimizer_key(i)])
    except (ValueError, KeyError) as e:
      raise GraphNasError(f"checkpoint does not fit this controller: {e}") \
          from None
    self.controller.rng.reset(arrays[checkpoint.RNG_STATE_KEY])


class Reinforce(_ControllerAlgorithm):
  """REINFORCE with an EMA baseline and entropy regularisation."""

  name = "reinforce"

  def __init__(self, space, seed=0, learning_rate=_D["learning_rate"],
               entropy_weight=ALGORITHM_DEFAULTS["reinforce"][
                   "entropy_weight"],
               baseline_decay=_D["baseline_decay"], **kwargs):
    super().__init__(space, seed, learning_rate, entropy_weight, **kwargs)
    if not 0 <= baseline_decay < 1:
      raise GraphNasError(f"baseline_decay must be in [0, 1), got "
                          f"{baseline_decay}")
    self.baseline_decay = baseline_decay
    self.baseline: Optional[float] = None
    # Count, mean and sum of squared deviations of every finite reward seen
    # (Welford): the scale of normalize_advantages.
    self.reward_stats = [0, 0.0, 0.0]

  def _finite(self, rewards):
    rewards = np.asarray(rewards, np.float32).reshape(-1)
    return rewards, rewards[np.isfinite(rewards)]

  def _update_baseline(self, finite_rewards):
    """Moves the baseline towards the batch's finite rewards (if any)."""
    if finite_rewards.size == 0:
      return
    d = self.baseline_decay
    self.baseline = d * self.baseline + (1 - d) * float(finite_rewards.mean())

  reusable = True

  def reset(self, seed):
    super().reset(seed)
    self.baseline = None
    self.reward_stats = [0, 0.0, 0.0]

  def _observe(self, finite_rewards):
    n, mean, m2 = self.reward_stats
    for r in finite_rewards.tolist():
      n += 1
      delta = r - mean
      mean += delta / n
      m2 += delta * (r - mean)
    self.reward_stats = [n, mean, m2]

  def _scaled(self, rewards, baseline):
    """(rewards, baseline) divided by the standard deviation of the
    rewards seen so far (normalize_advantages; until two differ: as
    given), so that the step does not depend on the rewards' scale."""
    n, _, m2 = self.reward_stats
    std = math.sqrt(m2 / (n - 1)) if n >= 2 else 0.0
    if not self.normalize_advantages or std <= 1e-12:
      return rewards, baseline
    return rewards / std, baseline / std

  def _first_baseline(self, finite_rewards):
    if self.baseline is None and finite_rewards.size:
      self.baseline = float(finite_rewards.mean())
    return 0.0 if self.baseline is None else self.baseline

  def update(self, walks, rewards):
    rewards, finite = self._finite(rewards)
    baseline = self._first_baseline(finite)
    self.num_updates += 1
    if finite.size == 0:  # nothing to learn from: no step at all
      return {"skipped": True, "baseline": self.baseline}
    self._observe(finite)
    terms = self._step(walks, *self._scaled(rewards, baseline), [],
                       pg_weight=1.0, queue_weight=0.0)
    self._update_baseline(finite)
    return {"loss": float(terms.total), "entropy": float(terms.entropy),
            "baseline": self.baseline}

  def state(self):
    arrays, meta = super().state()
    meta["baseline"] = self.baseline
    meta["reward_stats"] = list(self.reward_stats)
    return arrays, meta

  def restore(self, arrays, meta):
    super().restore(arrays, meta)
    self.baseline = meta["baseline"]
    self.reward_stats = list(meta.get("reward_stats", [0, 0.0, 0.0]))


class PriorityQueueTraining(Reinforce):
  """PQT: maximise the likelihood of the K best unique walks seen."""

  name = "pqt"

  def __init__(self, space, seed=0, learning_rate=_D["learning_rate"],
               entropy_weight=ALGORITHM_DEFAULTS["pqt"]["entropy_weight"],
               queue_size=_D["queue_size"], pg_weight=_D["pg_weight"],
               **kwargs):
    super().__init__(space, seed, learning_rate, entropy_weight, **kwargs)
    self.queue = TopKQueue(queue_size)
    self.pg_weight = pg_weight

  def reset(self, seed):
    super().reset(seed)
    self.queue = TopKQueue(self.queue.capacity)

  def update(self, walks, rewards):
    rewards, finite = self._finite(rewards)
    for w, r in zip(walks, rewards):
      if np.isfinite(r):
        self.queue.push(w, float(r))
    baseline = self._first_baseline(finite)
    self.num_updates += 1
    items = self.queue.items()
    if finite.size == 0 and not items:  # nothing to learn from
      return {"skipped": True, "queue_best": None}
    self._observe(finite)
    terms = self._step(walks, *self._scaled(rewards, baseline),
                       self.queue.walks(),
                       pg_weight=self.pg_weight, queue_weight=1.0)
    self._update_baseline(finite)
    return {"loss": float(terms.total), "entropy": float(terms.entropy),
            "queue_nll": float(terms.queue_nll),
            "queue_best": items[0][1] if items else None}

  def state(self):
    arrays, meta = super().state()
    meta["queue"] = self.queue.to_json()
    return arrays, meta

  def restore(self, arrays, meta):
    super().restore(arrays, meta)
    self.queue = TopKQueue.from_json(meta["queue"])


class RegularizedEvolution(Algorithm):
  """Aging evolution over walks (graph_nas.search.evolution): random walks
  until the population is full, then mutations of tournament winners."""

  name = "evolution"

  def __init__(self, space: SearchSpace, seed: int = 0,
               population_size: int = _D["population_size"],
               tournament_size: int = _D["tournament_size"],
               loop_mutation_prob: float = evolution.LOOP_MUTATION_PROB,
               local_step_prob: float = _D["local_step_prob"],
               no_repeats: bool = _D["no_repeats"]):
    super().__init__(space, seed)
    if not 0 <= local_step_prob <= 1:
      raise GraphNasError(f"local_step_prob must be in [0, 1], got "
                          f"{local_step_prob}")
    self.local_step_prob = float(local_step_prob)
    self._ordered = evolution.ordered_numeric(space)
    self.no_repeats = bool(no_repeats)
    if population_size < 2:
      raise GraphNasError(f"population_size must be >= 2, got "
                          f"{population_size}")
    if not 1 <= tournament_size <= population_size:
      raise GraphNasError(f"tournament_size must be in [1, population_size "
                          f"= {population_size}], got {tournament_size}")
    if not 0 <= loop_mutation_prob <= 1:
      raise GraphNasError(f"loop_mutation_prob must be in [0, 1], got "
                          f"{loop_mutation_prob}")
    self.population_size = int(population_size)
    self.tournament_size = int(tournament_size)
    self.loop_mutation_prob = float(loop_mutation_prob)
    self.rng = np.random.default_rng(seed)
    self.population = evolution.Population()

  def propose(self, n):
    """The i-th walk of a batch is random while the population and the
    batch's earlier random walks are fewer than P, else a mutation (of a
    new tournament's winner). With no_repeats, a walk whose architecture
    was proposed before is drawn again, up to evolution.ATTEMPTS times,
    then a random walk is tried as often; the last draw is kept."""
    out = []
    for i in range(n):
      random_phase = len(self.population) + i < self.population_size or \
          not len(self.population)
      tries = 2 * evolution.ATTEMPTS if self.no_repeats else 1
      for attempt in range(tries):
        if random_phase or attempt >= evolution.ATTEMPTS:
          walk = self.space.sample_random(self.rng).actions
        else:
          parent = self.population.walks[
              self.population.tournament(self.rng, self.tournament_size)]
          walk = evolution.mutate(self.space, parent, self.rng,
                                  self.loop_mutation_prob,
                                  local_prob=self.local_step_prob,
                                  ordered=self._ordered)
        if not self.no_repeats or self._unseen(walk):
          break
      out.append(walk)
    return out

  def update(self, walks, rewards):
    for walk, reward in zip(walks, np.asarray(rewards, np.float64)
                            .reshape(-1)):
      self.population.add(walk, reward)
    aged_out = self.population.age_out(self.population_size)
    self.num_updates += 1
    return {"population": len(self.population), "aged_out": aged_out,
            "population_best": self.population.best()}

  def state(self):
    arrays, meta = super().state()
    meta["rng"] = self.rng.bit_generator.state
    meta["population"] = self.population.to_json()
    meta["population_size"] = self.population_size
    meta["tournament_size"] = self.tournament_size
    return arrays, meta

  def restore(self, arrays, meta):
    super().restore(arrays, meta)
    for name in ("population_size", "tournament_size"):
      if meta.get(name) != getattr(self, name):
        raise GraphNasError(f"checkpoint was written with {name} "
                            f"{meta.get(name)}, this algorithm has "
                            f"{getattr(self, name)}")
    self.rng.bit_generator.state = meta["rng"]
    self.population = evolution.Population.from_json(meta["population"])


ALGORITHMS = {"reinforce": Reinforce, "pqt": PriorityQueueTraining,
              "random": RandomSearch, "evolution": RegularizedEvolution}


def make_algorithm(name: str, space: SearchSpace, seed: int = 0,
                   **kwargs) -> Algorithm:
  """Builds an algorithm by name; kwargs that it does not take are ignored
  for random search (evolution takes population_size, tournament_size and
  loop_mutation_prob)."""
  if name not in ALGORITHMS:
    raise GraphNasError(f"unknown algorithm '{name}' (known: "
                        f"{', '.join(sorted(ALGORITHMS))})")
  if name == "random":
    return RandomSearch(space, seed)
  return ALGORITHMS[name](space, seed=seed, **kwargs)
