"""Tests of REINFORCE, PQT, random search and their checkpoints."""


import numpy as np
import pytest
import tensorflow as tf

from graph_nas import space as space_lib
from graph_nas.search import algorithms, tasks
from graph_nas.search.controller import DynamicController
from graph_nas.errors import GraphNasError
from graph_nas.search.priority_queue import TopKQueue
from tests.conftest import PROTOS
from tests.test_controller import tiny_space


def _reward(walk):
  # A fixed, arbitrary reward per walk of the tiny space.
  return float((sum((i + 1) * (a + 1) for i, a in enumerate(walk)) % 5) / 4)


def test_reinforce_gradient_matches_exact_gradient():
  """Monte-Carlo REINFORCE gradient vs the exact one from enumeration.

  Exact: grad E[R] = sum_w p(w) R(w) grad log p(w) over all walks.
  Estimate: mean over N sampled walks of R(w) grad log p(w).
  Tolerance: relative L2 error < 0.1 at N = 40000 (the estimator's
  standard error here is about 0.02 of the gradient norm).
  """
  s = tiny_space()
  c = DynamicController(s, seed=4, hidden_dim=16, embedding_dim=8)
  walks = space_lib.exact_walks(s)
  rewards = np.array([_reward(w) for w in walks], np.float32)
  variables = c.trainable_variables

  def flat(grads):
    return np.concatenate([tf.convert_to_tensor(g).numpy().ravel()
                           for g in grads])

  actions, lengths = c.pad_walks(walks)
  with tf.GradientTape() as tape:
    logp, _ = c.log_prob_and_entropy(actions, lengths)
    exact_obj = tf.reduce_sum(tf.stop_gradient(tf.exp(logp)) * rewards * logp)
  exact = flat(tape.gradient(exact_obj, variables))

  samples = c.sample(40000)
  r = np.array([_reward(w) for w in samples], np.float32)
  actions, lengths = c.pad_walks(samples)
  with tf.GradientTape() as tape:
    logp, _ = c.log_prob_and_entropy(actions, lengths)
    est_obj = tf.reduce_mean(r * logp)
  estimate = flat(tape.gradient(est_obj, variables))
  rel = np.linalg.norm(estimate - exact) / np.linalg.norm(exact)
  assert rel < 0.1, rel
  # And it is not trivially small: a wrong sign would be far off.
  assert np.dot(estimate, exact) > 0


def test_reinforce_learns_stack_layers():
  s = space_lib.load(str(PROTOS / "stack_layers.textproto"))
  reward = tasks.reward_fn_for(s)
  algo = algorithms.Reinforce(s, seed=0, learning_rate=0.01,
                              entropy_weight=0.0)
  # The policy itself (propose() refuses repeats: no_repeats, a default).
  before = np.mean([reward(s.decode(w)) for w in algo.controller.sample(200)])
  for _ in range(40):
    walks = algo.propose(8)
    algo.update(walks, [reward(s.decode(w)) for w in walks])
  after = np.mean([reward(s.decode(w)) for w in algo.controller.sample(200)])
  assert after > before + 0.2, (before, after)


def test_pqt_queue_walks_become_likely():
  s = space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))
  algo = algorithms.PriorityQueueTraining(s, seed=0, learning_rate=0.01,
                                          entropy_weight=0.0, queue_size=2)
  best = (1, 49, 49, 49, 49)
  lp0 = algo.controller.log_prob([best])[0]
  for _ in range(30):
    algo.update([best, (0, 1, 2, 3, 4)], [1.0, 0.1])
  assert algo.queue.walks()[0] == best
  assert algo.controller.log_prob([best])[0] > lp0 + 5


@pytest.mark.parametrize("name", ["reinforce", "pqt", "random"])
def test_checkpoint_restores_everything(name, tmp_path):
  s = space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))
  reward = tasks.reward_fn_for(s)

  def make():
    return algorithms.make_algorithm(name, s, seed=3, learning_rate=0.01,
                                     entropy_weight=0.1)

  a = make()
  for _ in range(3):
    w = a.propose(4)
    a.update(w, [reward(s.decode(x)) for x in w])
  a.save(str(tmp_path / "ckpt.npz"))
  # Continue the original...
  w_a = a.propose(4)
  a.update(w_a, [reward(s.decode(x)) for x in w_a])
  w_a2 = a.propose(4)
  # ...and a fresh one restored from the checkpoint: same proposals.
  b = make()
  b.load(str(tmp_path / "ckpt.npz"))
  assert b.num_updates == 3
  w_b = b.propose(4)
  b.update(w_b, [reward(s.decode(x)) for x in w_b])
  w_b2 = b.propose(4)
  assert w_a == w_b
  assert w_a2 == w_b2


def test_checkpoint_of_another_space_is_refused(tmp_path):
  s2 = space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))
  s4 = space_lib.load(str(PROTOS / "select_optimizer_b4.textproto"))
  a = algorithms.Reinforce(s2)
  a.save(str(tmp_path / "c.npz"))
  with pytest.raises(GraphNasError):
    algorithms.Reinforce(s4).load(str(tmp_path / "c.npz"))
  with pytest.raises(GraphNasError, match="algorithm 'reinforce', not 'pqt'"):
    algorithms.PriorityQueueTraining(s2).load(str(tmp_path / "c.npz"))


def test_random_search_is_uniform():
  s = space_lib.load(str(PROTOS / "select_optimizer_b4.textproto"))
  algo = algorithms.RandomSearch(s, seed=0)
  firsts = [w[0] for w in algo.propose(4000)]
  counts = np.bincount(firsts, minlength=4) / 4000
  np.testing.assert_allclose(counts, 0.25, atol=0.03)


def test_bad_settings_raise():
  s = space_lib.load(str(PROTOS / "stack_layers.textproto"))
  with pytest.raises(GraphNasError, match="learning_rate"):
    algorithms.Reinforce(s, learning_rate=0)
  with pytest.raises(GraphNasError, match="unknown algorithm 'sgd'"):
    algorithms.make_algorithm("sgd", s)


# ------------------------------------------------------- priority queue
def test_topk_queue_keeps_best_unique():
  q = TopKQueue(3)
  for w, r in [((1,), 0.1), ((2,), 0.5), ((3,), 0.3), ((1,), 0.9),
               ((4,), 0.2), ((5,), 0.3)]:
    q.push(w, r)
  assert q.items() == [((1,), 0.9), ((2,), 0.5), ((3,), 0.3)]
  assert (5,) not in q  # a tie does not evict the earlier walk
  q2 = TopKQueue.from_json(q.to_json())
  assert q2.items() == q.items()
  with pytest.raises(ValueError):
    TopKQueue(0)


def test_linear_form_shares_the_graph_reward():
  g = space_lib.load(str(PROTOS / "select_optimizer_b4.textproto"))
  lin = space_lib.load(str(PROTOS / "select_optimizer_b4_linear.textproto"))
  rg, rl = tasks.reward_fn_for(g), tasks.reward_fn_for(lin)
  rng = np.random.default_rng(0)
  for _ in range(100):
    w = lin.sample_random(rng).actions
    graph_walk = g.linear_twin().to_graph_actions(w)
    assert rl(lin.decode(w)) == rg(g.decode(graph_walk))


# ------------------------------------------- entropy modes, bad rewards
def _finite_weights(algo):
  return all(np.isfinite(w).all() for w in algo.controller.get_weights())


@pytest.mark.parametrize("name", ["reinforce", "pqt"])
def test_non_finite_rewards_and_empty_queue_do_not_poison(name):
  s = tiny_space()
  algo = algorithms.make_algorithm(name, s, seed=0, learning_rate=0.1,
                                   entropy_weight=0.1, hidden_dim=8,
                                   embedding_dim=4)
  before = [w.copy() for w in algo.controller.get_weights()]
  # Nothing finite and (PQT) an empty queue: no step, no baseline.
  algo.update(algo.propose(2), [np.nan, np.inf])
  assert algo.baseline is None and algo.num_updates == 1
  for a, b in zip(before, algo.controller.get_weights()):
    np.testing.assert_array_equal(a, b)
  if name == "pqt":
    assert len(algo.queue) == 0
  # Mixed: the finite rewards alone set the baseline and the queue.
  walks = algo.propose(3)
  stats = algo.update(walks, [0.5, -np.inf, 0.25])
  assert algo.baseline == pytest.approx(0.375)
  assert np.isfinite(stats["loss"])
  assert _finite_weights(algo)
  if name == "pqt":
    assert len(algo.queue) <= 2
    assert all(np.isfinite(r) for _, r in algo.queue.items())
  # A later all-NaN batch leaves the baseline as it was.
  algo.update(algo.propose(2), [np.nan, np.nan])
  assert algo.baseline == pytest.approx(0.375)
  assert _finite_weights(algo)


@pytest.mark.parametrize("mode", ["mean", "normalized"])
def test_entropy_mode_is_checkpointed(mode, tmp_path):
  s = tiny_space()
  kw = dict(seed=0, hidden_dim=8, embedding_dim=4)
  a = algorithms.make_algorithm("pqt", s, entropy_mode=mode, **kw)
  a.update(a.propose(2), [0.1, 0.2])
  path = str(tmp_path / "c.npz")
  a.save(path)
  with np.load(path) as data:
    assert f'"entropy_mode": "{mode}"' in str(data["__meta__"])
  algorithms.make_algorithm("pqt", s, entropy_mode=mode, **kw).load(path)
  with pytest.raises(GraphNasError, match="entropy_mode"):
    algorithms.make_algorithm("pqt", s, **kw).load(path)  # default "sum"
  with pytest.raises(GraphNasError, match="entropy_mode"):
    algorithms.Reinforce(s, entropy_mode="max")


def test_entropy_modes_differ_in_scale():
  s = space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))
  walks = algorithms.Reinforce(s, seed=0).propose(4)
  ent = {}
  for mode in ["sum", "mean", "normalized"]:
    algo = algorithms.Reinforce(s, seed=0, entropy_mode=mode)
    ent[mode] = algo.update(walks, [0.1, 0.2, 0.3, 0.4])["entropy"]
  # Fresh controller, near uniform: 5 steps, each near log |A|.
  assert ent["sum"] == pytest.approx(5 * ent["mean"], rel=1e-5)
  assert 0.95 < ent["normalized"] <= 1.0
