"""Tests of the dynamic controller: sampling, replay, gradients."""

import numpy as np
import pytest
import tensorflow as tf

from graph_nas import space as space_lib
from graph_nas.controller import DynamicController
from tests.conftest import PROTOS

TINY = """
start: "a" max_steps: 3
vertices { name: "a"
  actions { name: "x" target: "b" key: "x" value { int_value: 1 } }
  actions { name: "y" target: "a" key: "n" op: ADD value { int_value: 1 } }
  actions { name: "stop" target: "end" } }
vertices { name: "b"
  actions { name: "k" target: "end" key: "k" int_values: [3, 5] } }
vertices { name: "unused"
  actions { name: "u" target: "end" } }
vertices { name: "end" }
"""


def tiny_space():
  import warnings
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return space_lib.loads(TINY)


def test_sampled_walks_are_valid_and_end_at_terminal_or_max_steps():
  s = space_lib.load(str(PROTOS / "stack_layers.textproto"))
  c = DynamicController(s, seed=3)
  actions, lengths, truncated = c.sample_tensors(64)
  for row, n, trunc in zip(actions, lengths, truncated):
    walk = s.check_walk(row[:n])  # raises if invalid
    assert walk.truncated == trunc
    assert (row[n:] == -1).all()
    assert n <= s.max_steps


def test_truncated_walks_are_flagged():
  s = tiny_space()
  c = DynamicController(s, seed=0)
  # Make "y" (loop) overwhelmingly likely at vertex a.
  bias = c.head_bias.numpy()
  bias[s.vertex_index["a"]] = [-20.0, 20.0, -20.0]
  c.head_bias.assign(bias)
  actions, lengths, truncated = c.sample_tensors(8)
  assert truncated.all()
  assert (lengths == s.max_steps).all()
  assert (actions == 1).all()


def test_seeded_sampling_is_reproducible():
  s = space_lib.load(str(PROTOS / "select_optimizer_b4.textproto"))
  a = DynamicController(s, seed=7).sample(20)
  b = DynamicController(s, seed=7).sample(20)
  c = DynamicController(s, seed=8).sample(20)
  assert a == b
  assert a != c


def test_log_prob_is_a_distribution_over_all_walks():
  s = tiny_space()
  c = DynamicController(s, seed=1)
  walks = space_lib.exact_walks(s)
  probs = np.exp(c.log_prob(walks))
  assert abs(probs.sum() - 1.0) < 1e-5


def test_sampling_frequencies_match_log_prob():
  s = tiny_space()
  c = DynamicController(s, seed=2)
  walks = space_lib.exact_walks(s)
  p = np.exp(c.log_prob(walks))
  samples = c.sample(20000)
  counts = np.array([samples.count(w) for w in walks]) / len(samples)
  np.testing.assert_allclose(counts, p, atol=0.015)


def test_only_visited_heads_get_gradient():
  s = space_lib.load(str(PROTOS / "select_optimizer_b4.textproto"))
  c = DynamicController(s, seed=0)
  walk = (2, 10, 20, 30, 40)  # adam branch
  actions, lengths = c.pad_walks([walk])
  with tf.GradientTape() as tape:
    logp, ent = c.log_prob_and_entropy(actions, lengths)
    loss = -tf.reduce_sum(logp) - tf.reduce_sum(ent)
  g_kernel, g_bias = tape.gradient(loss, [c.head_kernel, c.head_bias])
  g_kernel = tf.convert_to_tensor(g_kernel).numpy()
  g_bias = tf.convert_to_tensor(g_bias).numpy()
  visited = {s.vertex_index[n] for n in
             ["optimizer", "adam_p1", "adam_p2", "adam_p3", "adam_p4"]}
  for v in range(len(s.vertex_names)):
    nonzero = np.abs(g_kernel[v]).sum() + np.abs(g_bias[v]).sum() > 0
    assert nonzero == (v in visited), s.vertex_names[v]
  # Padded action columns never get gradient.
  sgd = s.vertex_index["optimizer"]
  assert np.abs(g_bias[sgd, 4:]).sum() == 0


def test_entropy_of_uniform_policy():
  s = tiny_space()
  c = DynamicController(s, seed=0)
  c.head_kernel.assign(tf.zeros_like(c.head_kernel))
  actions, lengths = c.pad_walks([(0, 1), (2,)])
  _, ent = c.log_prob_and_entropy(actions, lengths)
  np.testing.assert_allclose(ent.numpy(), [np.log(3) + np.log(2), np.log(3)],
                             rtol=1e-5)


def test_entropy_modes_of_uniform_policy():
  s = tiny_space()
  c = DynamicController(s, seed=0)
  c.head_kernel.assign(tf.zeros_like(c.head_kernel))
  actions, lengths = c.pad_walks([(0, 1), (2,)])
  # Steps: a (3 actions) then b (2 actions); or a alone.
  want = {"sum": [np.log(3) + np.log(2), np.log(3)],
          "mean": [(np.log(3) + np.log(2)) / 2, np.log(3)],
          "normalized": [1.0, 1.0]}
  for mode, expected in want.items():
    _, ent = c.log_prob_and_entropy(actions, lengths, mode)
    np.testing.assert_allclose(ent.numpy(), expected, rtol=1e-5)
  with pytest.raises(ValueError, match="entropy_mode"):
    c.log_prob_and_entropy(actions, lengths, "max")
