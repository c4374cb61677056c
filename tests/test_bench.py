"""Tests of the search-quality suite's parts (benchmarks.suite) and of the
options it chose (no repeats, local steps, normalised advantages)."""

import math

import numpy as np
import pytest

from benchmarks.suite import driver, nas_bench_graph, stats, tasks, tpe
from graph_nas import api
from graph_nas import space as space_lib
from graph_nas.errors import GraphNasError
from graph_nas.search import algorithms, evolution
from graph_nas.search.settings import AlgorithmSettings
from graph_nas.search.store import TrialStore, config_key


# ------------------------------------------------------------------ stats
def test_best_so_far_and_first_hit():
  r = [0.1, float("nan"), 0.5, 0.3, 1.0]
  assert stats.best_so_far(r).tolist() == [0.1, 0.1, 0.5, 0.5, 1.0]
  assert stats.best_at(r, 3) == 0.5
  assert stats.first_hit(r, 1.0) == 5
  assert stats.first_hit(r[:4], 1.0) == math.inf
  assert stats.test_of_best([0.2, 0.9, 0.9, 0.1], [5, 6, 7, 8], 4) == 6


def test_paired_bootstrap_sees_a_paired_difference_that_noise_hides():
  rng = np.random.default_rng(0)
  base = rng.normal(0, 1.0, 30)  # large seed-to-seed spread...
  a, b = base + 0.1 + rng.normal(0, 0.01, 30), base  # ...a small gain
  d, lo, hi = stats.paired_bootstrap(a, b)
  assert 0 < lo < d < hi and abs(d - 0.1) < 0.01
  d, lo, hi = stats.paired_bootstrap(b, b + rng.normal(0, 0.1, 30))
  assert lo < 0 < hi


def test_ranks_share_ties_and_average_over_tasks():
  assert stats.ranks({"a": 1.0, "b": 2.0, "c": 2.0}) == {
      "a": 3.0, "b": 1.5, "c": 1.5}
  assert stats.mean_ranks([{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0},
                           {"a": 2.0, "b": 1.0}]) == {"a": 4 / 3, "b": 5 / 3}


# ------------------------------------------------------------------ tasks
def test_every_suite_task_loads_with_its_optimum():
  names = tasks.names()
  assert len(names) == 12 and len(set(names)) == 12
  rng = np.random.default_rng(0)
  for name in names:
    task = tasks.get(name)
    for _ in range(5):
      r = task.reward(task.space.decode(task.space.sample_random(rng)
                                        .actions))
      assert 0 <= r <= task.optimum + 1e-9
  with pytest.raises(GraphNasError, match="unknown task 'nope'"):
    tasks.get("nope")


def test_nas_bench_graph_encodings_decode_the_same_architectures():
  lin, gra = nas_bench_graph.space("linear"), nas_bench_graph.space("graph")
  rng = np.random.default_rng(1)
  reward = nas_bench_graph.Reward("cora")
  for _ in range(50):
    walk = lin.sample_random(rng).actions
    # Same decisions (action indices) in the same order in both.
    assert lin.decode(walk) == gra.decode(walk)
  # The graph form has one operation head per (node, input).
  assert {"op3_from0", "op3_from3", "op1_from1"} <= set(gra.vertex_names)
  assert abs(reward.optimum() - 0.81933) < 1e-4  # the table's best validation acc.
  # The four-skip architectures are not in the table: reward 0.
  skips = {"op0": "skip", "op1": "skip", "op2": "skip", "op3": "skip",
           "lk1": 1, "lk2": 2, "lk3": 3}
  assert reward(skips) == 0.0
  # Isomorphic architectures share their record (the benchmark's hash).
  a = {"op0": "gcn", "op1": "gat", "op2": "sage", "op3": "fc",
       "lk1": 0, "lk2": 0, "lk3": 0}
  b = dict(a, op0="gat", op1="gcn")
  assert reward(a) == reward(b) and 0.3 < reward(a) < 0.83
  assert 0.3 < reward.test(a) < 0.9


def test_nas_bench_graph_path_features_name_the_architecture():
  """Two configs have the same path features exactly when the benchmark
  hashes them to the same architecture (on 600 random configs)."""
  import nas_bench_graph as package  # pylint: disable=import-outside-toplevel
  space = nas_bench_graph.space("linear")
  rng = np.random.default_rng(2)
  by_hash, by_features = {}, {}
  for _ in range(600):
    config = space.decode(space.sample_random(rng).actions)
    link, ops = nas_bench_graph.architecture(config)
    if ops == ["skip"] * 4:
      continue
    h = package.Arch(link, ops).valid_hash()
    f = tuple(nas_bench_graph.path_features(config))
    assert len(f) == len(nas_bench_graph.PATH_FEATURES)
    assert by_hash.setdefault(h, f) == f
    assert by_features.setdefault(f, h) == h
  assert len(by_hash) > 400
  # A chain and its reversal differ; two parallel nodes swapped do not.
  chain = {"op0": "gcn", "op1": "gat", "op2": "skip", "op3": "skip",
           "lk1": 1, "lk2": 2, "lk3": 3}
  assert nas_bench_graph.paths([0, 1, 2, 3], ["gcn", "gat", "skip", "skip"]
                               ) == [("gcn", "gat")]
  assert nas_bench_graph.path_features(chain) != nas_bench_graph.path_features(
      dict(chain, op0="gat", op1="gcn"))
  par = dict(chain, lk1=0, lk2=0, lk3=0, op2="fc")
  assert nas_bench_graph.path_features(par) == nas_bench_graph.path_features(
      dict(par, op0="gat", op1="gcn"))


def test_the_driver_gives_the_predictor_the_tasks_features():
  task = tasks.get("nbg_cora_linear")
  assert task.features is nas_bench_graph.path_features
  m = driver.Method("tf", "evolution", screen="predictor",
                    candidates_per_trial=8, task_features=True)
  screen = m.make_screen(task.space, 0, task.features)
  assert screen.scorer.user_features is nas_bench_graph.path_features
  assert driver.Method("p", "evolution", screen="predictor",
                       candidates_per_trial=8).make_screen(
                           task.space, 0, task.features
                       ).scorer.user_features is None
  trace = driver.run(task, m, 0, 30)
  assert len(trace.rewards) == 30 and trace.screened == 20 * 7


# ----------------------------------------------------------------- driver
@pytest.mark.parametrize("method", [
    driver.Method("e", "evolution", {"population_size": 5,
                                     "tournament_size": 2,
                                     "no_repeats": True,
                                     "local_step_prob": 0.5}),
    driver.Method("r", "reinforce", {"learning_rate": 0.02}, 3),
    driver.Method("random", "random")])
def test_the_driver_gives_what_the_search_loop_gives(method, tmp_path):
  """Best-after-k in the suite is what a user of the loop gets."""
  task = tasks.get("select_optimizer_b2")
  trace = driver.run(task, method, seed=4, budget=24)
  api.search(task.space, task.reward, str(tmp_path / "run"),
             max_trials=24, seed=4, walks_per_update=method.walks_per_update,
             algorithm=method.algorithm, screen=method.screen,
             tensorboard=False, **method.settings)
  with TrialStore(str(tmp_path / "run" / "trials.sqlite")) as store:
    stored = [t["reward"] for t in store.trials()]
  assert stored == trace.rewards


def test_a_repeat_counts_as_a_trial_with_its_old_reward():
  task = tasks.get("stack_layers")  # about 30 configs: random repeats
  trace = driver.run(task, driver.Method("random", "random"), 0, 100)
  assert len(trace.rewards) == 100 and trace.repeats > 50


# -------------------------------------------------------------------- TPE
def test_tpe_asks_for_every_decision_of_a_walk():
  task = tasks.get("stack_layers")  # a loop: one parameter per visit
  algo = tpe.OptunaTPE(task.space, seed=0, n_startup_trials=3)
  for _ in range(6):
    walks = algo.propose(2)
    for w in walks:
      task.space.check_walk(w)
    algo.update(walks, [task.reward(task.space.decode(w)) for w in walks])
  trials = algo.study.trials
  assert len(trials) == 12 and all(t.value is not None for t in trials)
  longest = max(trials, key=lambda t: len(t.params))
  assert set(longest.params) == {f"stack@{k}" for k in
                                 range(len(longest.params))}
  # An int_range vertex is an ordered integer parameter.
  so = tasks.get("select_optimizer_b2").space
  algo = tpe.OptunaTPE(so, seed=0)
  algo.propose(1)
  dist = algo.study.trials[-1].distributions
  kinds = {name: type(d).__name__ for name, d in dist.items()}
  assert kinds.pop("optimizer@0") == "CategoricalDistribution"
  assert len(kinds) == 4 and set(kinds.values()) == {"IntDistribution"}
  assert {n.split("_")[0] for n in kinds} <= {"sgd", "adam"}
  # Same seed, same proposals.
  a = tpe.OptunaTPE(so, seed=3).propose(3)
  assert tpe.OptunaTPE(so, seed=3).propose(3) == a


# ------------------------------------------------------------- no repeats
# 4 x 4 x 4 = 64 architectures, each as likely as any other to a random walk:
# small enough that a search without no_repeats proposes one twice within
# 32 proposals (the birthday effect, and a learning controller narrows),
# large enough that one with it always finds an unseen one in its tries.
_GRID = """
name: "grid_4x4x4"
start: "a"
vertices { name: "a"
  actions { name: "a" target: "b" key: "a" int_range { start: 1 stop: 4 } } }
vertices { name: "b"
  actions { name: "b" target: "c" key: "b" int_range { start: 1 stop: 4 } } }
vertices { name: "c"
  actions { name: "c" target: "end" key: "c" int_range { start: 1 stop: 4 } } }
vertices { name: "end" }
"""


def _grid_reward(config):
  return -abs(config["a"] - 2) - abs(config["b"] - 3) - abs(config["c"] - 1)


def _proposals(algorithm, no_repeats, rounds, n, **settings):
  """The config keys an algorithm proposes on the grid, in order."""
  space = space_lib.loads(_GRID)
  kw = AlgorithmSettings(algorithm=algorithm, no_repeats=no_repeats,
                         **settings).algorithm_kwargs()
  algo = algorithms.make_algorithm(algorithm, space, seed=0, **kw)
  keys = []
  for _ in range(rounds):
    walks = algo.propose(n)
    assert len(walks) == n
    keys += [config_key(space.decode(w)) for w in walks]
    algo.update(walks, [_grid_reward(space.decode(w)) for w in walks])
  return keys, algo


def _repeats(keys):
  """How many proposals repeat an architecture proposed before."""
  return len(keys) - len(set(keys))


@pytest.mark.parametrize("algorithm", ["evolution", "pqt", "reinforce"])
def test_no_repeats_refuses_an_architecture_proposed_before(algorithm):
  settings = ({"population_size": 5, "tournament_size": 2}
              if algorithm == "evolution" else {})
  # 32 proposals: the space (64) never runs out of unseen architectures.
  keys, _ = _proposals(algorithm, True, 8, 4, **settings)
  assert len(keys) == 32 and _repeats(keys) == 0
  # The same search without the option does propose repeats: the count
  # above measures something.
  keys, _ = _proposals(algorithm, False, 8, 4, **settings)
  assert len(keys) == 32 and _repeats(keys) >= 3


def test_a_small_space_runs_out_of_new_architectures_and_repeats():
  """80 proposals in a space of 64: no_repeats finds (nearly) every
  architecture before it repeats one, then accepts repeats (it does not
  stall); without it the search keeps to a part of the space."""
  settings = {"population_size": 4, "tournament_size": 2}
  keys, algo = _proposals("evolution", True, 40, 2, **settings)
  assert len(keys) == 80 and len(set(keys)) == 64
  first_repeat = next(i for i, k in enumerate(keys) if k in keys[:i])
  assert first_repeat >= 56  # the last few are hard to hit by chance
  assert algo._seen == set(keys)  # noqa: SLF001
  keys, _ = _proposals("evolution", False, 40, 2, **settings)
  assert len(keys) == 80 and len(set(keys)) < 48


@pytest.mark.parametrize("algorithm", ["evolution", "pqt"])
def test_the_seen_architectures_are_checkpointed(algorithm, tmp_path):
  task = tasks.get("select_optimizer_b2")

  def make():
    return algorithms.make_algorithm(
        algorithm, task.space, seed=2, no_repeats=True,
        **({"population_size": 4, "tournament_size": 2}
           if algorithm == "evolution" else {}))

  a = make()
  for _ in range(3):
    w = a.propose(3)
    a.update(w, [task.reward(task.space.decode(x)) for x in w])
  a.save(str(tmp_path / "c.npz"))
  b = make()
  b.load(str(tmp_path / "c.npz"))
  assert b._seen == a._seen and len(a._seen) == 9  # noqa: SLF001
  assert a.propose(3) == b.propose(3)


# ------------------------------------------------------------ local steps
def test_a_local_step_stays_near_and_inside_the_range():
  rng = np.random.default_rng(0)
  steps = [evolution.local_step(50, 100, rng) - 50 for _ in range(2000)]
  assert 0 not in steps and max(map(abs, steps)) <= 25
  assert np.median(np.abs(steps)) <= 8  # mostly small...
  assert max(steps) >= 15  # ...some large
  assert {evolution.local_step(0, 100, rng) for _ in range(200)} <= set(
      range(1, 26))
  assert {evolution.local_step(2, 3, rng) for _ in range(50)} == {1}


def test_only_ordered_numeric_vertices_take_local_steps():
  so = tasks.get("select_optimizer_b2").space
  ordered = evolution.ordered_numeric(so)
  names = dict(zip(so.vertex_names, ordered))
  assert names["sgd_p1"] and not names["optimizer"] and not names["end"]
  rng = np.random.default_rng(0)
  parent = so.check_walk((0, 49, 10, 10, 10))  # sgd, p1 = 50
  moved = []
  for _ in range(300):
    child = evolution.change_action(so, parent, rng, step=1, local_prob=1.0,
                                    ordered=ordered)
    moved.append(child[1] - 49)
  assert max(map(abs, moved)) <= 25 and 0 not in moved
  uniform = [evolution.change_action(so, parent, rng, step=1)[1] - 49
             for _ in range(300)]
  assert max(map(abs, uniform)) > 30  # the textbook change goes anywhere


# ---------------------------------------------------- advantage scaling
def test_normalized_advantages_divide_by_the_rewards_spread():
  task = tasks.get("select_optimizer_b2")
  algo = algorithms.make_algorithm("reinforce", task.space, seed=0,
                                   normalize_advantages=True)
  r = np.array([0.80, 0.81, 0.79, 0.82], np.float32)
  algo._observe(r)  # noqa: SLF001
  scaled, b = algo._scaled(r, 0.8)  # noqa: SLF001
  std = float(np.std(r, ddof=1))
  np.testing.assert_allclose(scaled, r / std, rtol=1e-5)
  assert b == pytest.approx(0.8 / std)
  plain = algorithms.make_algorithm("reinforce", task.space, seed=0,
                                    normalize_advantages=False)
  plain._observe(r)  # noqa: SLF001
  assert plain._scaled(r, 0.8)[1] == 0.8  # noqa: SLF001


# ------------------------------------------------------------ reuse
@pytest.mark.parametrize("algorithm", ["pqt", "reinforce"])
def test_a_reset_algorithm_is_a_new_one(algorithm):
  """The suite reuses a controller (and its traced steps) across seeds."""
  task = tasks.get("select_optimizer_b2")

  def run(algo):
    out = []
    for _ in range(4):
      w = algo.propose(3)
      algo.update(w, [task.reward(task.space.decode(x)) for x in w])
      out.append(w)
    return out, [x.copy() for x in algo.controller.get_weights()]

  kw = dict(learning_rate=0.05, no_repeats=True, normalize_advantages=True)
  used = algorithms.make_algorithm(algorithm, task.space, seed=1, **kw)
  run(used)
  used.reset(7)
  got, weights = run(used)
  want, fresh_weights = run(algorithms.make_algorithm(
      algorithm, task.space, seed=7, **kw))
  assert got == want
  for a, b in zip(weights, fresh_weights):
    np.testing.assert_array_equal(a, b)


def test_the_driver_reuses_a_controller_across_seeds():
  task = tasks.get("select_optimizer_b2")
  method = driver.Method("p", "pqt", {"learning_rate": 0.01})
  first = driver.run(task, method, seed=0, budget=10)
  driver.run(task, method, seed=1, budget=10)
  again = driver.run(task, method, seed=0, budget=10)
  assert again.rewards == first.rewards
  reused = [algo for (name, spec), algo in driver._REUSED.items()  # noqa: SLF001
            if name == task.name and '"p"' in spec]
  assert len(reused) == 1 and reused[0].seed == 0
