"""Tests of the learned policy drawn on the graph (policy, dot)."""

import collections
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from graph_nas import space as space_lib
from graph_nas.report import dot, policy as policy_lib
from graph_nas.search.controller import DynamicController
from graph_nas.errors import GraphNasError
from graph_nas.search.store import TrialStore
from tests.conftest import PROTOS, ROOT, require_tool
from tests.report_fixtures import shared_toy_run, toy_run

ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
PNG = b"\x89PNG\r\n\x1a\n"
# Seconds a `python -m graph_nas.dot` subprocess may take (it imports
# TensorFlow and samples a controller: generous for 2 loaded cores).
SUBPROCESS_TIMEOUT_S = 300

TINY = """
name: "tiny"
start: "a"
vertices {
  name: "a"
  actions { name: "x" target: "b" key: "x" int_values: [1, 2, 3] }
  actions { name: "stop" target: "end" }
}
vertices {
  name: "b"
  actions { name: "y" target: "end" key: "y" int_values: [7, 8] }
}
vertices { name: "end" }
"""


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
  return shared_toy_run(tmp_path_factory)


def _controller(space, bias=None, seed=0):
  c = DynamicController(space, embedding_dim=8, hidden_dim=16, seed=seed)
  if bias is not None:
    c.head_bias.assign(np.asarray(bias, np.float32))
  return c


def _sums_by_source(text):
  sums = collections.defaultdict(float)
  for src, _, p in dot.edge_probabilities(text):
    if p is not None:
      sums[src] += p
  return sums


def test_policy_matches_the_controllers_own_probabilities():
  space = space_lib.loads(TINY)
  rng = np.random.default_rng(0)
  c = _controller(space, rng.normal(0, 1.5, (3, space.max_actions)))
  pol = policy_lib.controller_policy(space, c, num_walks=2000, seed=3)
  walks = space_lib.exact_walks(space)
  p_walk = dict(zip(walks, np.exp(c.log_prob(walks))))
  assert abs(sum(p_walk.values()) - 1) < 1e-5
  # At the start every walk is in the same state: exact.
  first = [sum(p for w, p in p_walk.items() if w[0] == a) for a in range(4)]
  np.testing.assert_allclose(pol.probs[0], first, atol=1e-5)
  # At "b": p(y | how the walk got there), averaged over visits.
  reach_b = sum(first[:3])
  expect_b = [sum(p for w, p in p_walk.items() if len(w) == 2 and w[1] == j)
              / reach_b for j in range(2)]
  np.testing.assert_allclose(pol.probs[1], expect_b, atol=0.02)
  assert pol.probs[2] is None  # the terminal
  np.testing.assert_allclose(pol.visit_share, [1, reach_b, 1], atol=0.03)
  assert pol.visits[1] == round(pol.visit_share[1] * 2000)


def test_policy_graph_of_a_toy_run(toy_dir):
  space = space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))
  text = dot.run_policy_dot(space, str(toy_dir), num_walks=64)
  edges = dot.edge_probabilities(text)
  # An int_range of 100 values is one summarised edge: one edge per Action
  # message, not 1 + 8 * 100.
  assert len(edges) == 2 + 8
  sums = _sums_by_source(text)
  pol = policy_lib.policy_of_run(str(toy_dir), space, num_walks=64)
  visited = [space.vertex_names[v] for v in range(len(space.vertex_names))
             if pol.probs[v] is not None]
  assert "optimizer" in visited
  for name in visited:
    assert sums[name] == pytest.approx(1.0, abs=1e-5), name
  # Probabilities on the edges are the policy's.
  p_opt = {dst: p for src, dst, p in edges if src == "optimizer"}
  np.testing.assert_allclose([p_opt["sgd_p1"], p_opt["adam_p1"]],
                             pol.probs[space.vertex_index["optimizer"]],
                             atol=1e-6)
  # The best trial's path is red, its values named on the summarised edges.
  with TrialStore(str(toy_dir / "trials.sqlite")) as store:
    best = store.best(1)[0]
  opt = best["config"]["optimizer"]
  assert f"best trial, #{best['trial_id']} " in text
  red = [l for l in text.splitlines() if "->" in l and "#d62728" in l]
  assert len(red) == 5  # optimizer -> p1 -> p2 -> p3 -> p4 -> end
  assert all(l.strip().startswith(f'"{opt}_') or
             l.strip().startswith('"optimizer"') for l in red)
  for k in ("p1", "p2", "p3", "p4"):
    line = next(l for l in red if l.strip().startswith(f'"{opt}_{k}"'))
    assert f"best trial: {best['config'][k]} " in line


def test_policy_graph_of_a_toy_run_renders_to_png(toy_dir, tmp_path):
  require_tool("dot", "graphviz")
  space = space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))
  text = dot.run_policy_dot(space, str(toy_dir), num_walks=64)
  png = tmp_path / "policy.png"
  dot.render_png(text, str(png))
  assert png.read_bytes()[:8] == PNG


def test_policy_graph_of_an_image_space_expands_few_values():
  space = space_lib.load(str(PROTOS / "cifar.textproto"))
  bias = np.zeros((len(space.vertex_names), space.max_actions))
  # Make every walk stop after layer 3: layers 4 to 6 go unvisited.
  more3 = space.vertex_index["layer3_more"]
  cont = [e.name for e in space.edges[more3]].index("continue")
  bias[more3, cont] = -30.0
  pol = policy_lib.controller_policy(space, _controller(space, bias),
                                     num_walks=128)
  text = dot.policy_dot(space, pol)
  sums = _sums_by_source(text)
  for v, name in enumerate(space.vertex_names):
    if pol.probs[v] is not None:
      assert sums[name] == pytest.approx(1.0, abs=1e-5), name
  # Three filter values: three parallel labelled edges.
  filters = [l for l in text.splitlines()
             if l.strip().startswith('"layer1_filters" -> "layer1_repeats"')]
  assert len(filters) == 3
  assert [re.search(r"filters=(\d+)", l).group(1) for l in filters] == \
      ["16", "24", "32"]
  # Unvisited vertices are dashed and their edges carry no probability.
  assert pol.visit_share[space.vertex_index["layer4"]] == 0
  assert re.search(r'"layer4" \[label="layer4\\nvisited 0%".*dashed', text)
  assert "layer4_kernel" not in sums
  assert pol.visit_share[space.vertex_index["layer3"]] > 0.05


def test_policy_graph_of_a_cyclic_space():
  space = space_lib.load(str(PROTOS / "stack_layers.textproto"))
  stack = space.vertex_index["stack"]
  bias = np.zeros((len(space.vertex_names), space.max_actions))
  bias[stack] = [np.log(3.0), 0.0]  # add about 3 times in 4
  pol = policy_lib.controller_policy(space, _controller(space, bias),
                                     num_walks=256)
  text = dot.policy_dot(space, pol)
  assert _sums_by_source(text)["stack"] == pytest.approx(1.0, abs=1e-5)
  loop = [l for l in text.splitlines() if '"stack" -> "stack"' in l]
  assert len(loop) == 1
  # Every step of every walk is a visit of "stack".
  per_walk = pol.visits[stack] / 256
  assert per_walk > 2
  assert f"{per_walk:.1f}x per walk" in text


def test_random_search_policy_is_uniform(tmp_path):
  space = toy_run(tmp_path, algorithm="random", max_trials=6)
  pol = policy_lib.policy_of_run(str(tmp_path), space, num_walks=32)
  assert "uniform" in pol.source
  v = space.vertex_index["sgd_p1"]
  np.testing.assert_allclose(pol.probs[v], np.full(100, 0.01))
  # The drawing of such a run shows what its best trials chose instead.
  text = dot.run_policy_dot(space, str(tmp_path), num_walks=32)
  assert "uniform" not in text
  assert "the actions of the 6 best trials" in text
  shares = [p for s_, t, p in dot.edge_probabilities(text)
            if s_ == "optimizer"]
  assert sum(shares) == pytest.approx(1.0) and len(shares) <= 2


def test_another_space_is_refused(toy_dir):
  b4 = space_lib.load(str(PROTOS / "select_optimizer_b4.textproto"))
  with pytest.raises(GraphNasError, match="searched space "
                     "'select_optimizer_b2'"):
    dot.run_policy_dot(b4, str(toy_dir))
  with pytest.raises(GraphNasError, match="does not fit"):
    policy_lib.load_controller(b4, str(toy_dir / "checkpoint.npz"))


def test_space_without_a_run_is_one_edge_per_action():
  space = space_lib.load(str(PROTOS / "select_optimizer_b4.textproto"))
  text = dot.policy_dot(space)
  assert text.count("->") == 1 + 4 + 4 * 4 - 1
  assert "probability=" not in text


def _dot_cli(*args):
  return subprocess.run([sys.executable, "-m", "graph_nas.dot", *args],
                        capture_output=True, text=True, cwd=ROOT, env=ENV,
                        check=False, timeout=SUBPROCESS_TIMEOUT_S)


def test_dot_cli_draws_a_runs_policy(toy_dir, tmp_path):
  require_tool("dot", "graphviz")
  png, dot_file = tmp_path / "p.png", tmp_path / "p.dot"
  r = _dot_cli(f"--space={PROTOS / 'select_optimizer_b2.textproto'}",
               f"--runs={toy_dir}", f"--png={png}", f"--dot={dot_file}",
               "--walks=32")
  assert r.returncode == 0, r.stderr[-3000:]
  assert png.read_bytes()[:8] == PNG
  assert len(dot.edge_probabilities(dot_file.read_text())) == 10


def test_dot_cli_writes_a_runs_policy_without_graphviz(toy_dir, tmp_path):
  dot_file = tmp_path / "p.dot"
  r = _dot_cli(f"--space={PROTOS / 'select_optimizer_b2.textproto'}",
               f"--runs={toy_dir}", f"--dot={dot_file}", "--walks=32")
  assert r.returncode == 0, r.stderr[-3000:]
  text = dot_file.read_text()
  assert len(dot.edge_probabilities(text)) == 10
  assert "best trial, #" in text


def test_dot_cli_refuses_a_run_of_another_space(toy_dir):
  r = _dot_cli(f"--space={PROTOS / 'select_optimizer_b4.textproto'}",
               f"--runs={toy_dir}")
  assert r.returncode != 0
  assert r.stderr.strip().splitlines()[-1].startswith("error: ")
  assert "searched space 'select_optimizer_b2'" in r.stderr
