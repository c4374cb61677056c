"""Search algorithms behind one interface: REINFORCE, PQT, random search.

An :class:`Algorithm` proposes walks (tuples of per-vertex action indices),
takes their rewards in :meth:`Algorithm.update`, and exposes its whole state
(controller weights, optimizer slots, baseline, priority queue, random
state) for checkpointing with :meth:`save` / :meth:`load`.

REINFORCE: loss = -mean((R - b) * log p(walk)) - beta * mean(H(walk)), with
b an exponential moving average of rewards (initialised to the first batch
mean) and H the sum of the step entropies along a walk; Adam.

Priority Queue Training (Abolafia et al. 2018): keep the K best unique walks
seen; loss = -mean(log p(queue walks)) - beta * mean(H(sampled walks)),
optionally + pg_weight * the REINFORCE term.

Random search: uniform choice at every visited vertex (no learning).
"""

import abc
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from graph_nas.controller import DynamicController
from graph_nas.errors import GraphNasError
from graph_nas.priority_queue import TopKQueue
from graph_nas.space import SearchSpace

WalkT = Tuple[int, ...]


def _atomic_write(path: str, write):
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    write(f)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


class Algorithm(abc.ABC):
  """Propose walks; update with rewards; save and restore all state."""

  name = "algorithm"

  def __init__(self, space: SearchSpace, seed: int = 0):
    self.space = space
    self.seed = seed
    self.num_updates = 0

  @abc.abstractmethod
  def propose(self, n: int) -> List[WalkT]:
    """Proposes n walks."""

  @abc.abstractmethod
  def update(self, walks: Sequence[WalkT], rewards: Sequence[float]) -> Dict:
    """Learns from finished walks; returns scalar stats."""

  def state(self) -> Tuple[Dict[str, np.ndarray], Dict]:
    """(numpy arrays, JSON-able metadata) that restore this algorithm."""
    return {}, {"num_updates": self.num_updates, "name": self.name}

  def restore(self, arrays: Dict[str, np.ndarray], meta: Dict) -> None:
    if meta.get("name") != self.name:
      raise GraphNasError(f"checkpoint is of algorithm '{meta.get('name')}',"
                          f" not '{self.name}'")
    self.num_updates = int(meta["num_updates"])

  def save(self, path: str, extra: Optional[Dict] = None) -> None:
    """Writes the whole state (and a JSON-able `extra`, returned by load) to
    one .npz file, atomically."""
    arrays, meta = self.state()
    meta = dict(meta, extra=extra or {})
    arrays = dict(arrays, __meta__=np.array(json.dumps(meta)))
    _atomic_write(path, lambda f: np.savez(f, **arrays))

  def load(self, path: str) -> Dict:
    try:
      with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
      meta = json.loads(str(arrays.pop("__meta__")))
    except (OSError, ValueError, KeyError) as e:
      raise GraphNasError(f"cannot read checkpoint: {e}",
                          source=path) from None
    self.restore(arrays, meta)
    return meta.get("extra", {})


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
               learning_rate: float = 1e-3, entropy_weight: float = 0.1,
               embedding_dim: int = 32, hidden_dim: int = 64,
               controller: Optional[DynamicController] = None):
    super().__init__(space, seed)
    if learning_rate <= 0:
      raise GraphNasError(f"learning_rate must be > 0, got {learning_rate}")
    if entropy_weight < 0:
      raise GraphNasError(f"entropy_weight must be >= 0, got "
                          f"{entropy_weight}")
    self.controller = controller or DynamicController(
        space, embedding_dim=embedding_dim, hidden_dim=hidden_dim, seed=seed)
    self.entropy_weight = entropy_weight
    self.optimizer = keras.optimizers.Adam(learning_rate)
    self.optimizer.build(self.controller.trainable_variables)

  def propose(self, n):
    return self.controller.sample(n)

  def _pad(self, walks):
    return self.controller.pad_walks(walks)

  def state(self):
    arrays, meta = super().state()
    for i, w in enumerate(self.controller.get_weights()):
      arrays[f"controller/{i}"] = w
    for i, v in enumerate(self.optimizer.variables):
      arrays[f"optimizer/{i}"] = np.asarray(v.numpy())
    arrays["rng_state"] = self.controller.rng.state.numpy()
    return arrays, meta

  def restore(self, arrays, meta):
    super().restore(arrays, meta)
    weights = self.controller.get_weights()
    n = sum(1 for k in arrays if k.startswith("controller/"))
    if n != len(weights):
      raise GraphNasError(f"checkpoint has {n} controller weights, the "
                          f"controller has {len(weights)}: was it written "
                          "for another search space?")
    try:
      self.controller.set_weights([arrays[f"controller/{i}"]
                                   for i in range(n)])
      for i, v in enumerate(self.optimizer.variables):
        v.assign(arrays[f"optimizer/{i}"])
    except (ValueError, KeyError) as e:
      raise GraphNasError(f"checkpoint does not fit this controller: {e}") \
          from None
    self.controller.rng.reset(arrays["rng_state"])


class Reinforce(_ControllerAlgorithm):
  """REINFORCE with an EMA baseline and entropy regularisation."""

  name = "reinforce"

  def __init__(self, space, seed=0, learning_rate=1e-3, entropy_weight=0.1,
               baseline_decay=0.95, **kwargs):
    super().__init__(space, seed, learning_rate, entropy_weight, **kwargs)
    if not 0 <= baseline_decay < 1:
      raise GraphNasError(f"baseline_decay must be in [0, 1), got "
                          f"{baseline_decay}")
    self.baseline_decay = baseline_decay
    self.baseline: Optional[float] = None

  @tf.function(reduce_retracing=True)
  def _train_step(self, actions, lengths, advantages, beta):
    with tf.GradientTape() as tape:
      logp, ent = self.controller._replay(actions, lengths)
      pg_loss = -tf.reduce_mean(advantages * logp)
      entropy = tf.reduce_mean(ent)
      loss = pg_loss - beta * entropy
    variables = self.controller.trainable_variables
    grads = tape.gradient(loss, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    return loss, entropy

  def update(self, walks, rewards):
    rewards = np.asarray(rewards, np.float32)
    if self.baseline is None:
      self.baseline = float(rewards.mean())
    advantages = rewards - self.baseline
    actions, lengths = self._pad(walks)
    loss, entropy = self._train_step(actions, lengths, advantages,
                                     tf.constant(self.entropy_weight))
    d = self.baseline_decay
    self.baseline = d * self.baseline + (1 - d) * float(rewards.mean())
    self.num_updates += 1
    return {"loss": float(loss), "entropy": float(entropy),
            "baseline": self.baseline}

  def state(self):
    arrays, meta = super().state()
    meta["baseline"] = self.baseline
    return arrays, meta

  def restore(self, arrays, meta):
    super().restore(arrays, meta)
    self.baseline = meta["baseline"]


class PriorityQueueTraining(Reinforce):
  """PQT: maximise the likelihood of the K best unique walks seen."""

  name = "pqt"

  def __init__(self, space, seed=0, learning_rate=1e-3, entropy_weight=0.8,
               queue_size=10, pg_weight=0.0, **kwargs):
    super().__init__(space, seed, learning_rate, entropy_weight, **kwargs)
    self.queue = TopKQueue(queue_size)
    self.pg_weight = pg_weight

  @tf.function(reduce_retracing=True)
  def _pqt_step(self, actions, lengths, advantages, q_actions, q_lengths,
                beta, pg_weight):
    with tf.GradientTape() as tape:
      logp, ent = self.controller._replay(actions, lengths)
      q_logp, _ = self.controller._replay(q_actions, q_lengths)
      topk_loss = -tf.reduce_mean(q_logp)
      pg_loss = -tf.reduce_mean(advantages * logp)
      entropy = tf.reduce_mean(ent)
      loss = topk_loss + pg_weight * pg_loss - beta * entropy
    variables = self.controller.trainable_variables
    grads = tape.gradient(loss, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    return loss, entropy, topk_loss

  def update(self, walks, rewards):
    rewards = np.asarray(rewards, np.float32)
    for w, r in zip(walks, rewards):
      if np.isfinite(r):
        self.queue.push(w, float(r))
    if self.baseline is None:
      self.baseline = float(rewards.mean())
    advantages = rewards - self.baseline
    actions, lengths = self._pad(walks)
    q_actions, q_lengths = self._pad(self.queue.walks())
    loss, entropy, topk = self._pqt_step(
        actions, lengths, advantages, q_actions, q_lengths,
        tf.constant(self.entropy_weight), tf.constant(self.pg_weight))
    d = self.baseline_decay
    self.baseline = d * self.baseline + (1 - d) * float(rewards.mean())
    self.num_updates += 1
    return {"loss": float(loss), "entropy": float(entropy),
            "queue_nll": float(topk), "queue_best": self.queue.items()[0][1]}

  def state(self):
    arrays, meta = super().state()
    meta["queue"] = self.queue.to_json()
    return arrays, meta

  def restore(self, arrays, meta):
    super().restore(arrays, meta)
    self.queue = TopKQueue.from_json(meta["queue"])


ALGORITHMS = {"reinforce": Reinforce, "pqt": PriorityQueueTraining,
              "random": RandomSearch}


def make_algorithm(name: str, space: SearchSpace, seed: int = 0,
                   **kwargs) -> Algorithm:
  """Builds an algorithm by name; kwargs that it does not take are ignored
  for random search."""
  if name not in ALGORITHMS:
    raise GraphNasError(f"unknown algorithm '{name}' (known: "
                        f"{', '.join(sorted(ALGORITHMS))})")
  if name == "random":
    return RandomSearch(space, seed)
  return ALGORITHMS[name](space, seed=seed, **kwargs)
