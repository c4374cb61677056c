"""Exact-gradient tests of the one loss (graph_nas.search.losses) that REINFORCE and
PQT share, after brain_coder's agent test.

On a tiny space every walk is enumerated (space.exact_walks). The loss is fed
ALL walks weighted by p(w) (stop-gradient), so its gradient is an exact
expectation over the walk distribution; each term is compared with a
gradient computed independently by enumeration:

- REINFORCE: sum_w p(w) (R(w) - b) grad log p(w) = grad E_p[R] for any
  baseline b (the exact gradient differentiates sum_w p(w) R(w) directly).
- Entropy: sum_w p(w) grad H(w), with H(w) under each convention computed
  from conditional probabilities obtained as p(prefix + a) / p(prefix); under
  "sum" also: that plus the score part sum_w H(w) grad p(w) is the gradient
  of the exact entropy -sum_w p(w) log p(w) of the walk distribution.
- PQT: the gradient of -mean_j log p(q_j) over the queue walks.
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from graph_nas import space as space_lib
from graph_nas.search import losses
from graph_nas.search.controller import ENTROPY_MODES, DynamicController

# A branch (a -> b or a -> c -> d), a one-action vertex (c), a self loop on
# a (so some walks are truncated at max_steps) and 1-3 actions per vertex.
SPACE = """
start: "a" max_steps: 3
vertices { name: "a"
  actions { name: "x" target: "b" key: "x" value { int_value: 1 } }
  actions { name: "y" target: "c" key: "x" value { int_value: 2 } }
  actions { name: "z" target: "a" key: "n" op: ADD value { int_value: 1 } } }
vertices { name: "b"
  actions { name: "k" target: "end" key: "k" int_values: [3, 5, 7] } }
vertices { name: "c"
  actions { name: "only" target: "d" } }
vertices { name: "d"
  actions { name: "m" target: "end" key: "m" int_values: [1, 2] } }
vertices { name: "end" }
"""


def _space():
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return space_lib.loads(SPACE)


def _reward(walk):
  return float((sum((i + 2) * (a + 1) for i, a in enumerate(walk)) % 7) / 6)


@pytest.fixture(scope="module")
def setup():
  s = _space()
  c = DynamicController(s, seed=5, hidden_dim=8, embedding_dim=4)
  # Larger head weights than the initialiser's: a far from uniform policy.
  rng = np.random.default_rng(0)
  c.head_kernel.assign(rng.normal(0, 1.0, c.head_kernel.shape)
                       .astype(np.float32))
  c.head_bias.assign(rng.normal(0, 1.0, c.head_bias.shape)
                     .astype(np.float32))
  walks = space_lib.exact_walks(s)
  actions, lengths = c.pad_walks(walks)
  p = np.exp(c.log_prob(walks))
  assert abs(p.sum() - 1) < 1e-5
  assert len(walks) >= 6 and len(set(lengths.tolist())) >= 2
  return s, c, walks, actions, lengths, p


def _grad(c, fn):
  variables = c.trainable_variables
  with tf.GradientTape() as tape:
    value = fn()
  grads = tape.gradient(value, variables)
  return np.concatenate([np.zeros(v.shape).ravel() if g is None else
                         tf.convert_to_tensor(g).numpy().ravel()
                         for g, v in zip(grads, variables)])


def _close(a, b, rtol=1e-4):
  err = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)
  assert err < rtol, err
  assert np.linalg.norm(b) > 1e-4  # not trivially zero


def _loss(c, actions, lengths, mode="sum", rewards=None, baseline=0.0,
          pg_weight=0.0, entropy_weight=0.0, queue_weight=0.0, queue=None,
          weights=None):
  logp, ent = c.log_prob_and_entropy(actions, lengths, mode)
  q_logp = None
  if queue is not None:
    q_logp = c.log_prob_and_entropy(*c.pad_walks(queue))[0]
  if rewards is None:
    rewards = np.zeros(len(lengths), np.float32)
  return losses.loss(logp, ent, rewards, baseline, pg_weight, entropy_weight,
                     queue_weight, q_logp, weights)


def _walk_log_probs(c, walks):
  """Differentiable log p of each walk, one replay per walk (not batched)."""
  return tf.stack([c.log_prob_and_entropy(*c.pad_walks([w]))[0][0]
                   for w in walks])


def _exact_walk_entropy(s, c, walks, mode):
  """Differentiable H(w) per walk, from p(a | prefix) = p(prefix + a) /
  p(prefix) over all actions of each visited vertex (one batched replay of
  all those prefixes; the controller's entropy code is not used)."""
  batch, index = [()], {(): 0}
  steps = []  # per walk: [(prefix index, [index of prefix + a], n)]
  for w in walks:
    verts = s.check_walk(w).vertices
    rows = []
    for t in range(len(w)):
      n = int(s.num_actions[verts[t]])
      ids = []
      for x in [tuple(w[:t])] + [tuple(w[:t]) + (a,) for a in range(n)]:
        if x not in index:
          index[x] = len(batch)
          batch.append(x)
        ids.append(index[x])
      rows.append((ids[0], ids[1:], n))
    steps.append(rows)
  lp = c.log_prob_and_entropy(*c.pad_walks(batch))[0]
  lp = tf.tensor_scatter_nd_update(lp, [[0]], [0.0])  # log p(()) = 0
  out = []
  for w, rows in zip(walks, steps):
    terms = []
    for prefix, ids, n in rows:
      q = tf.exp(tf.gather(lp, ids) - lp[prefix])
      h = -tf.reduce_sum(q * tf.math.log(q))
      if mode == "normalized":
        h = h / np.log(n) if n > 1 else 0.0 * h
      terms.append(h)
    h = tf.add_n(terms)
    out.append(h if mode == "sum" else h / len(w))
  return tf.stack(out)


@pytest.mark.parametrize("baseline", [0.0, 0.4])
def test_pg_term_is_the_exact_policy_gradient(setup, baseline):
  s, c, walks, actions, lengths, p = setup
  r = np.array([_reward(w) for w in walks], np.float32)
  got = _grad(c, lambda: _loss(c, actions, lengths, rewards=r,
                               baseline=baseline, pg_weight=1.0,
                               weights=p).total)
  # Exact: -grad sum_w p(w) R(w), p differentiated directly (no score form).
  exact = _grad(c, lambda: -tf.reduce_sum(
      tf.exp(_walk_log_probs(c, walks)) * r))
  _close(got, exact)
  # Sign: a small descent step on the loss raises the expected reward.
  variables = c.trainable_variables
  before = [v.numpy() for v in variables]
  expected = lambda: float(np.sum(np.exp(c.log_prob(walks)) * r))
  e0 = expected()
  offset = 0
  for v in variables:
    size = int(np.prod(v.shape))
    v.assign_sub(1e-2 * got[offset:offset + size].reshape(v.shape))
    offset += size
  try:
    assert expected() > e0
  finally:
    for v, b in zip(variables, before):
      v.assign(b)


def test_baseline_changes_the_terms_not_the_expected_gradient(setup):
  s, c, walks, actions, lengths, p = setup
  r = np.array([_reward(w) for w in walks], np.float32)
  g0 = _grad(c, lambda: _loss(c, actions, lengths, rewards=r, baseline=0.0,
                              pg_weight=1.0, weights=p).total)
  g1 = _grad(c, lambda: _loss(c, actions, lengths, rewards=r, baseline=0.7,
                              pg_weight=1.0, weights=p).total)
  _close(g1, g0)
  # ...while one walk's gradient does depend on b (through R - b).
  one = np.eye(len(walks), dtype=np.float32)[0]
  h0 = _grad(c, lambda: _loss(c, actions, lengths, rewards=r, baseline=0.0,
                              pg_weight=1.0, weights=one).total)
  h1 = _grad(c, lambda: _loss(c, actions, lengths, rewards=r, baseline=0.7,
                              pg_weight=1.0, weights=one).total)
  assert np.linalg.norm(h1 - h0) > 1e-3 * np.linalg.norm(h0)


@pytest.mark.parametrize("mode", ENTROPY_MODES)
def test_entropy_term_is_exact(setup, mode):
  s, c, walks, actions, lengths, p = setup
  terms = _loss(c, actions, lengths, mode, entropy_weight=1.0, weights=p)
  h_exact = _exact_walk_entropy(s, c, walks, mode)
  np.testing.assert_allclose(float(terms.entropy),
                             float(tf.reduce_sum(p * h_exact)), rtol=1e-4)
  got = _grad(c, lambda: _loss(c, actions, lengths, mode, entropy_weight=1.0,
                               weights=p).total)
  # The loss subtracts the entropy: its gradient is -sum_w p grad H(w).
  pathwise = _grad(c, lambda: -tf.reduce_sum(
      p * _exact_walk_entropy(s, c, walks, mode)))
  _close(got, pathwise)
  if mode == "normalized":
    assert np.all(h_exact.numpy() <= 1 + 1e-6)
  if mode == "sum":
    # E_p[H_sum(w)] is the entropy of the walk distribution, and the
    # pathwise gradient plus the score part is its exact gradient.
    lp = np.log(p)
    np.testing.assert_allclose(float(tf.reduce_sum(p * h_exact)),
                               -np.sum(p * lp), rtol=1e-4)
    h = h_exact.numpy()
    score = _grad(c, lambda: -tf.reduce_sum(
        h * tf.exp(_walk_log_probs(c, walks))))
    full = _grad(c, lambda: tf.reduce_sum(
        tf.exp(_walk_log_probs(c, walks)) * _walk_log_probs(c, walks)))
    _close(got + score, full)


def test_entropy_weight_scales_the_term(setup):
  s, c, walks, actions, lengths, p = setup
  g1 = _grad(c, lambda: _loss(c, actions, lengths, "mean", entropy_weight=1.0,
                              weights=p).total)
  g3 = _grad(c, lambda: _loss(c, actions, lengths, "mean", entropy_weight=0.3,
                              weights=p).total)
  _close(g3, 0.3 * g1)


def test_queue_term_is_the_mean_negative_log_likelihood(setup):
  s, c, walks, actions, lengths, p = setup
  queue = [walks[0], walks[-1], walks[len(walks) // 2]]
  got = _grad(c, lambda: _loss(c, actions, lengths, queue_weight=1.0,
                               queue=queue).total)
  exact = _grad(c, lambda: -tf.reduce_mean(_walk_log_probs(c, queue)))
  _close(got, exact)
  # Sign: a descent step makes the queue walks more likely.
  lp0 = c.log_prob(queue).sum()
  variables = c.trainable_variables
  before = [v.numpy() for v in variables]
  offset = 0
  for v in variables:
    size = int(np.prod(v.shape))
    v.assign_sub(1e-2 * got[offset:offset + size].reshape(v.shape))
    offset += size
  try:
    assert c.log_prob(queue).sum() > lp0
  finally:
    for v, b in zip(variables, before):
      v.assign(b)


def test_all_terms_add_with_their_weights(setup):
  s, c, walks, actions, lengths, p = setup
  r = np.array([_reward(w) for w in walks], np.float32)
  queue = walks[:2]
  kw = dict(rewards=r, baseline=0.3, weights=p, queue=queue)
  total = _grad(c, lambda: _loss(c, actions, lengths, "normalized",
                                 pg_weight=0.5, entropy_weight=0.2,
                                 queue_weight=1.0, **kw).total)
  parts = [_grad(c, lambda w=w: _loss(c, actions, lengths, "normalized",
                                      **dict(kw, **w)).total)
           for w in ({"pg_weight": 0.5}, {"entropy_weight": 0.2},
                     {"queue_weight": 1.0})]
  _close(total, sum(parts))


def test_non_finite_rewards_are_dropped_and_empty_queue_is_nothing(setup):
  s, c, walks, actions, lengths, p = setup
  r = np.array([_reward(w) for w in walks], np.float32)
  bad = r.copy()
  bad[0], bad[1] = np.nan, np.inf
  keep = np.ones(len(walks), np.float32)
  keep[:2] = 0
  kw = dict(baseline=0.2, pg_weight=1.0, entropy_weight=0.1)
  empty = tf.zeros([0], tf.float32)

  def with_bad():
    logp, ent = c.log_prob_and_entropy(actions, lengths)
    return losses.loss(logp, ent, bad, kw["baseline"], kw["pg_weight"],
                       kw["entropy_weight"], 1.0, empty)
  terms = with_bad()
  assert np.isfinite(float(terms.total))
  assert float(terms.queue_nll) == 0.0
  got = _grad(c, lambda: with_bad().total)
  assert np.isfinite(got).all()
  dropped = _grad(c, lambda: _loss(c, actions, lengths, rewards=r,
                                   weights=keep, **kw).total)
  _close(got, dropped)
  # Nothing finite at all: zero loss, zero gradient.
  nan = np.full(len(walks), np.nan, np.float32)
  got = _grad(c, lambda: _loss(c, actions, lengths, rewards=nan,
                               **kw).total)
  assert np.isfinite(got).all() and not got.any()
