"""The learning algorithms' machinery (an LSTM controller trained with
Adam) and REINFORCE; PQT (graph_nas.search.algorithms.pqt) builds on it.
TensorFlow.

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
mode is an error.

Non-finite rewards: their walks are dropped from the update (the loss gives
them weight 0), they do not enter the baseline or the queue; an empty queue
contributes nothing.

No repeats (graph_nas.search.algorithms.base): the controller samples more
walks and keeps the unseen ones.
"""

import math
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from graph_nas.errors import GraphNasError
from graph_nas.search import checkpoint, losses
from graph_nas.search.algorithms.base import Algorithm, check_declared
from graph_nas.search.controller import DynamicController
from graph_nas.search.settings import ALGORITHM_DEFAULTS, AlgorithmSettings
from graph_nas.search.settings import defaults as _declared
from graph_nas.space import SearchSpace

# The declared defaults (graph_nas.search.settings), not numbers said again
# here.
_D = _declared(AlgorithmSettings)


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
    check_declared("reinforce", learning_rate=learning_rate,
                   entropy_weight=entropy_weight, entropy_mode=entropy_mode,
                   value_features=value_features,
                   embedding_dim=embedding_dim, hidden_dim=hidden_dim)
    self.no_repeats = bool(no_repeats)
    self.normalize_advantages = bool(normalize_advantages)
    self.entropy_mode = entropy_mode
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
    check_declared("reinforce", baseline_decay=baseline_decay)
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
