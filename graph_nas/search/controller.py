"""The dynamic controller (paper, section 3): an LSTM that walks the graph.

At step t the inputs are the current vertex v_t, the previous action a_{t-1}
(global ids: every (vertex, action) pair has its own embedding row; a start
token at t = 0) and the LSTM state. The two embeddings are concatenated,
passed through a fully connected layer and an LSTM cell (the timestep
independent network). The timestep dependent network is the current
vertex's own dense head (weights selected by v_t), masked to that vertex's
actions; the sampled action's edge gives v_{t+1}.

Sampling is one ``tf.function`` with a ``tf.while_loop`` over a batch of
walks of different lengths; log-probabilities and entropies of given walks
are computed by replaying them with masks. Heads are gathered by vertex, so
only visited vertices' heads receive gradient.

Numeric actions (``value_features`` > 0, an option; 0 is the paper's
controller): an action whose value is a number (e.g. one of an int_range's
100 edges) also gets the logit h . (W phi(u) ) + b . phi(u), where u is its
value scaled to [-1, 1] within its vertex, phi(u) = K Gaussian bumps
centred on a regular grid of [-1, 1] (width: the grid step), and W [H, K],
b [K] are shared by every vertex: an output embedding of the action's value.
Neighbouring values then share what is learned about one of them, which the
per-vertex heads (one unrelated logit per action) cannot do.

Entropy of a walk (``entropy_mode``; H_t is the entropy of the action
distribution at the walk's t-th step, at vertex v_t with |A_{v_t}| actions,
and T the walk's number of steps, at least 1):

  "sum":        sum_t H_t (in expectation over walks, the entropy of the
                walk distribution; grows with walk length and action counts)
  "mean":       (1 / T) sum_t H_t
  "normalized": (1 / T) sum_t H_t / log |A_{v_t}|, each step's term in
                [0, 1] (a vertex with a single action contributes 0 but its
                step still counts in T), so the walk's value is in [0, 1].
"""

from typing import List, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from graph_nas.space import SearchSpace

_NEG = -1e9

from graph_nas.search.settings import ENTROPY_MODES  # noqa: E402  (declared there)


def check_entropy_mode(mode: str) -> str:
  if mode not in ENTROPY_MODES:
    raise ValueError(f"entropy_mode must be one of {', '.join(ENTROPY_MODES)}"
                     f", got '{mode}'")
  return mode


def value_feature_table(space: SearchSpace, k: int) -> np.ndarray:
  """phi [V, A, k] float32 (module doc): Gaussian bumps of each numeric
  action's value scaled to [-1, 1] within its vertex; zeros for actions
  whose value is not a number and at vertices with fewer than two distinct
  numeric values."""
  table = np.zeros((len(space.vertex_names), space.max_actions, k),
                   np.float32)
  centres = np.linspace(-1.0, 1.0, k)
  width = centres[1] - centres[0]
  for vi, edges in enumerate(space.edges):
    idx = [ai for ai, e in enumerate(edges)
           if isinstance(e.value, (int, float)) and
           not isinstance(e.value, bool)]
    values = np.array([float(edges[ai].value) for ai in idx])
    if len(set(values.tolist())) < 2:
      continue
    u = 2.0 * (values - values.min()) / (values.max() - values.min()) - 1.0
    table[vi, idx] = np.exp(-0.5 * ((u[:, None] - centres) / width) ** 2)
  return table


class DynamicController(keras.Model):
  """LSTM controller over a :class:`~graph_nas.space.SearchSpace`."""

  def __init__(self, space: SearchSpace, embedding_dim: int = 32,
               hidden_dim: int = 64, seed: int = 0, *,
               value_features: int = 0, name="controller", **kwargs):
    super().__init__(name=name, **kwargs)
    self.space = space
    self.num_vertices = len(space.vertex_names)
    self.max_actions = space.max_actions
    self.max_steps = space.max_steps
    self.hidden_dim = hidden_dim
    self.start_token = space.num_global_actions
    init = keras.initializers.RandomUniform(-0.1, 0.1, seed=seed)
    self.vertex_embedding = keras.layers.Embedding(
        self.num_vertices, embedding_dim, embeddings_initializer=init,
        name="vertex_embedding")
    self.action_embedding = keras.layers.Embedding(
        space.num_global_actions + 1, embedding_dim,
        embeddings_initializer=init, name="action_embedding")
    self.fc = keras.layers.Dense(hidden_dim, activation="tanh",
                                 kernel_initializer=keras.initializers
                                 .GlorotUniform(seed=seed + 1), name="fc")
    self.cell = keras.layers.LSTMCell(
        hidden_dim, kernel_initializer=keras.initializers.GlorotUniform(
            seed=seed + 2), recurrent_initializer=keras.initializers
        .Orthogonal(seed=seed + 3), name="lstm")
    # One dense head per vertex, stored as [V, H, A] and gathered by vertex.
    self.head_kernel = self.add_weight(
        shape=(self.num_vertices, hidden_dim, self.max_actions),
        initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=seed + 4),
        name="head_kernel")
    self.head_bias = self.add_weight(
        shape=(self.num_vertices, self.max_actions), initializer="zeros",
        name="head_bias")
    if value_features < 0 or value_features == 1:
      raise ValueError(f"value_features must be 0 (off) or >= 2, got "
                       f"{value_features}")
    self.value_features = int(value_features)
    if self.value_features:
      self._phi = tf.constant(value_feature_table(space, value_features))
      self.value_kernel = self.add_weight(
          shape=(hidden_dim, value_features),
          initializer=keras.initializers.RandomUniform(-0.1, 0.1,
                                                       seed=seed + 5),
          name="value_kernel")
      self.value_bias = self.add_weight(
          shape=(value_features,), initializer="zeros", name="value_bias")
    self._next_vertex = tf.constant(np.maximum(space.next_vertex, 0),
                                    tf.int32)
    self._action_offset = tf.constant(space.action_offset, tf.int32)
    self._terminal = tf.constant(space.terminal, tf.bool)
    self._mask = tf.constant(
        np.arange(self.max_actions)[None, :] < space.num_actions[:, None])
    # max_taken: each edge's counter (-1: none) and each counter's limit; a
    # walk's counts are carried through the loop and an action used up is
    # masked like a padded one (sampling and replay alike). One dummy
    # counter when the space has none.
    limits = np.asarray(space.counter_limit, np.int32)
    self._counted = len(limits) > 0
    self._num_counters = max(1, len(limits))
    self._edge_counter = tf.constant(space.edge_counter, tf.int32)
    self._counter_limit = tf.constant(
        limits if len(limits) else np.full(1, np.iinfo(np.int32).max,
                                           np.int32), tf.int32)
    self._start = int(space.start)
    n = np.asarray(space.num_actions, np.float64)
    self._inv_log_actions = tf.constant(
        np.where(n >= 2, 1.0 / np.log(np.maximum(n, 2)), 0.0), tf.float32)
    self.rng = tf.random.Generator.from_seed(seed)
    self._built_once = False
    self.build_weights()

  def build_weights(self):
    """Creates every weight (a replay of one dummy step)."""
    if self._built_once:
      return
    v = tf.constant([self._start], tf.int32)
    prev = tf.constant([self.start_token], tf.int32)
    state = self.initial_state(1)
    self._step(v, prev, state, self._no_counts(1))
    self._built_once = True

  def initial_state(self, batch_size):
    zeros = tf.zeros((batch_size, self.hidden_dim))
    return [zeros, zeros]

  def _no_counts(self, batch_size):
    return tf.zeros([batch_size, self._num_counters], tf.int32)

  def _allowed(self, v, counts):
    """bool [B, A]: the actions at v (not padding, not used up)."""
    mask = tf.gather(self._mask, v)
    if not self._counted:
      return mask
    counter = tf.gather(self._edge_counter, v)  # [B, A]
    safe = tf.maximum(counter, 0)
    taken = tf.gather(counts, safe, batch_dims=1)
    used_up = tf.logical_and(counter >= 0,
                             taken >= tf.gather(self._counter_limit, safe))
    return tf.logical_and(mask, tf.logical_not(used_up))

  def _count(self, v, a, counts, live):
    """counts after the walks take action a at v (where live)."""
    if not self._counted:
      return counts
    counter = tf.gather_nd(self._edge_counter, tf.stack([v, a], 1))
    hit = tf.logical_and(live, counter >= 0)
    return counts + tf.one_hot(tf.maximum(counter, 0), self._num_counters,
                               dtype=tf.int32) * tf.cast(hit, tf.int32)[:,
                                                                        None]

  def _step(self, v, prev_global_action, state, counts=None):
    """(logits [B, A], new state) at vertices v; counts [B, C]: how often
    each walk took each counted action (None: never)."""
    if counts is None:
      counts = self._no_counts(tf.shape(v)[0])
    x = tf.concat([self.vertex_embedding(v),
                   self.action_embedding(prev_global_action)], axis=-1)
    x = self.fc(x)
    h, new_state = self.cell(x, state)
    kernel = tf.gather(self.head_kernel, v)  # [B, H, A]
    logits = tf.einsum("bh,bha->ba", h, kernel) + tf.gather(self.head_bias, v)
    if self.value_features:
      coef = tf.matmul(h, self.value_kernel) + self.value_bias  # [B, K]
      logits += tf.einsum("bk,bak->ba", coef, tf.gather(self._phi, v))
    logits = tf.where(self._allowed(v, counts), logits, _NEG)
    return logits, new_state

  # -------------------------------------------------------------- sampling
  @tf.function(reduce_retracing=True)
  def _sample(self, batch_size):
    v = tf.fill([batch_size], self._start)
    prev = tf.fill([batch_size], self.start_token)
    state = self.initial_state(batch_size)
    done = tf.gather(self._terminal, v)
    lengths = tf.zeros([batch_size], tf.int32)
    actions_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)

    def cond(t, v, prev, h, c, done, lengths, counts, ta):
      return tf.logical_and(t < self.max_steps,
                            tf.logical_not(tf.reduce_all(done)))

    def body(t, v, prev, h, c, done, lengths, counts, ta):
      logits, (h2, c2) = self._step(v, prev, [h, c], counts)
      seed = self.rng.make_seeds(1)[:, 0]
      a = tf.random.stateless_categorical(logits, 1, seed,
                                          dtype=tf.int32)[:, 0]
      a = tf.where(done, -1, a)
      ta = ta.write(t, a)
      safe_a = tf.maximum(a, 0)
      global_a = tf.gather(self._action_offset, v) + safe_a
      next_v = tf.gather_nd(self._next_vertex, tf.stack([v, safe_a], 1))
      counts = self._count(v, safe_a, counts, tf.logical_not(done))
      lengths = lengths + tf.cast(tf.logical_not(done), tf.int32)
      v = tf.where(done, v, next_v)
      prev = tf.where(done, prev, global_a)
      h2 = tf.where(done[:, None], h, h2)
      c2 = tf.where(done[:, None], c, c2)
      done = tf.logical_or(done, tf.gather(self._terminal, v))
      return (t + 1, v, prev, h2, c2, done, lengths, counts, ta)

    t0 = tf.constant(0)
    _, v, _, _, _, done, lengths, _, ta = tf.while_loop(
        cond, body, (t0, v, prev, state[0], state[1], done, lengths,
                      self._no_counts(batch_size), actions_ta))
    # [B, T], transposed as float32 (action indices are small integers,
    # exact there): oneDNN has no int32 transpose, and TensorFlow logs an
    # (harmless) error-level line once per process for one.
    actions = tf.cast(tf.transpose(tf.cast(ta.stack(), tf.float32)),
                      tf.int32)
    actions = tf.reshape(actions, [batch_size, -1])
    return actions, lengths, tf.logical_not(done)

  def sample(self, batch_size: int) -> List[Tuple[int, ...]]:
    """Samples `batch_size` walks; returns their action tuples."""
    actions, lengths, _ = self.sample_tensors(batch_size)
    return [tuple(row[:n]) for row, n in zip(actions.tolist(),
                                             lengths.tolist())]

  def sample_tensors(self, batch_size: int):
    """(actions [B, T] padded with -1, lengths [B], truncated [B]) numpy."""
    if self.space.terminal[self._start]:  # every walk is the empty walk
      return (np.zeros((batch_size, 0), np.int32),
              np.zeros(batch_size, np.int32), np.zeros(batch_size, bool))
    actions, lengths, truncated = self._sample(tf.constant(batch_size))
    return actions.numpy(), lengths.numpy(), truncated.numpy()

  # ------------------------------------------------------------ replaying
  def pad_walks(self, walks: Sequence[Sequence[int]]):
    """Pads walks to a [B, T] int32 array (-1 padding) plus lengths."""
    lengths = np.array([len(w) for w in walks], np.int32)
    width = max(1, int(lengths.max()) if len(walks) else 1)
    out = np.full((len(walks), width), -1, np.int32)
    for i, w in enumerate(walks):
      out[i, :len(w)] = w
    return out, lengths

  def log_prob_and_entropy(self, actions, lengths, entropy_mode="sum"):
    """Per-walk sum of log p(a_t) and the walk's entropy (replay).

    actions: int [B, T] padded with -1; lengths: int [B]. The entropy is
    under `entropy_mode` (module doc; "sum": the sum of step entropies).
    Differentiable.
    """
    return self._replay(tf.convert_to_tensor(actions, tf.int32),
                        tf.convert_to_tensor(lengths, tf.int32),
                        check_entropy_mode(entropy_mode))

  def _replay(self, actions, lengths, entropy_mode="sum"):
    batch_size = tf.shape(actions)[0]
    steps = tf.shape(actions)[1]
    v = tf.fill([batch_size], self._start)
    prev = tf.fill([batch_size], self.start_token)
    h, c = self.initial_state(batch_size)
    logp_ta = tf.TensorArray(tf.float32, size=steps)
    ent_ta = tf.TensorArray(tf.float32, size=steps)

    def body(t, v, prev, h, c, counts, logp_ta, ent_ta):
      logits, (h, c) = self._step(v, prev, [h, c], counts)
      a = actions[:, t]
      live = t < lengths
      safe_a = tf.maximum(a, 0)
      log_probs = tf.nn.log_softmax(logits)
      probs = tf.exp(log_probs)
      ent = -tf.reduce_sum(tf.where(self._allowed(v, counts),
                                    probs * log_probs, 0.0), axis=-1)
      if entropy_mode == "normalized":
        ent = ent * tf.gather(self._inv_log_actions, v)
      lp = tf.gather(log_probs, safe_a, batch_dims=1)
      live_f = tf.cast(live, tf.float32)
      logp_ta = logp_ta.write(t, lp * live_f)
      ent_ta = ent_ta.write(t, ent * live_f)
      global_a = tf.gather(self._action_offset, v) + safe_a
      counts = self._count(v, safe_a, counts, live)
      v = tf.gather_nd(self._next_vertex, tf.stack([v, safe_a], 1))
      return t + 1, v, global_a, h, c, counts, logp_ta, ent_ta

    _, _, _, _, _, _, logp_ta, ent_ta = tf.while_loop(
        lambda t, *_: t < steps, body,
        (tf.constant(0), v, prev, h, c, self._no_counts(batch_size),
         logp_ta, ent_ta))
    logp = tf.reduce_sum(logp_ta.stack(), axis=0)
    ent = tf.reduce_sum(ent_ta.stack(), axis=0)
    if entropy_mode != "sum":
      ent = ent / tf.cast(tf.maximum(lengths, 1), tf.float32)
    return logp, ent

  def log_prob(self, walks: Sequence[Sequence[int]]) -> np.ndarray:
    actions, lengths = self.pad_walks(walks)
    logp, _ = self._replay_fn(actions, lengths)
    return logp.numpy()

  @tf.function(reduce_retracing=True)
  def _replay_fn(self, actions, lengths):
    return self._replay(actions, lengths)

  def head_variables(self):
    return [self.head_kernel, self.head_bias]
