"""Tests of regularized evolution over graph walks (graph_nas.search.
evolution, algorithms.RegularizedEvolution): mutation, population,
tournament, checkpoints, resume, its front doors, and that it beats random
search on a toy task."""

import math

import numpy as np
import pytest

from graph_nas import api, search, space as space_lib
from graph_nas.errors import GraphNasError, SettingError
from graph_nas.search import algorithms, checkpoint, evaluators
from graph_nas.search.algorithms import evolution
from graph_nas.search import tasks
from graph_nas.search.settings import AlgorithmSettings
from graph_nas.search.store import TrialStore
from tests.conftest import PROTOS
from tests.launch_helpers import launch


def _load(name):
  return space_lib.load(str(PROTOS / f"{name}.textproto"))


def branching_space():
  """Two optimizer branches of different lengths that rejoin at `batch`."""
  b = api.SpaceBuilder("branch_rejoin", start="optimizer")
  (b.vertex("optimizer")
   .action("sgd", "sgd_lr", key="optimizer", value="sgd")
   .action("adam", "adam_lr", key="optimizer", value="adam"))
  b.vertex("sgd_lr").action("lr", "sgd_momentum", key="lr",
                            values=[0.01, 0.1, 0.3])
  b.vertex("sgd_momentum").action("m", "batch", key="momentum",
                                  values=[0.0, 0.5, 0.9])
  b.vertex("adam_lr").action("lr", "batch", key="lr", values=[1e-4, 1e-3])
  b.vertex("batch").action("bs", "end", key="batch_size",
                           values=[32, 64, 128, 256])
  b.vertex("end")
  return b.build()


def layers_space(max_steps=25):
  """A loop with a body: each turn appends a layer and picks its kernel
  and filters."""
  b = api.SpaceBuilder("layer_loop", start="more", max_steps=max_steps)
  (b.vertex("more")
   .action("add", "kernel", key="layers", op="APPEND")
   .action("stop", "end"))
  b.vertex("kernel").action("k", "filters", key="layers[-1].kernel",
                            values=[3, 5, 7])
  b.vertex("filters").action("f", "more", key="layers[-1].filters",
                             values=[8, 16])
  b.vertex("end")
  return b.build()


SPACES = {"stack_layers": lambda: _load("stack_layers"),
          "select_optimizer_b2": lambda: _load("select_optimizer_b2"),
          "cifar_cpu": lambda: _load("cifar_cpu"),
          "branch_rejoin": branching_space,
          "layer_loop": layers_space,
          "layer_loop_tight": lambda: layers_space(max_steps=7)}


# ---------------------------------------------------------------- mutation
@pytest.mark.parametrize("name", sorted(SPACES))
def test_mutations_are_valid_walks_that_differ_from_the_parent(name):
  s = SPACES[name]()
  rng = np.random.default_rng(0)
  ended = cut_short = 0
  for _ in range(150):
    parent = s.sample_random(rng)
    cut_short += parent.truncated
    for _ in range(3):
      child = evolution.mutate(s, parent.actions, rng)
      walk = s.check_walk(child)  # raises on an invalid walk
      s.decode(child)
      assert child != parent.actions
      ended += not walk.truncated
  # Every child reaches a terminal (a child cut short is drawn again),
  # also where max_steps cuts parents short (layer_loop_tight: 7 steps,
  # two layers and a bit).
  assert ended == 450
  if name == "layer_loop_tight":
    assert cut_short > 10


def _first_change(parent, child):
  return next(t for t, (a, b) in enumerate(zip(parent, child)) if a != b)


def _keeps_the_parents_later_decisions(s, parent, child):
  """Before the changed step, the child is the parent; after it, every
  visit of a vertex the parent also made (the same k-th visit) keeps the
  parent's action. Returns how many later decisions were kept."""
  p, c = s.check_walk(parent), s.check_walk(child)
  t = _first_change(parent, child)
  decisions = evolution._visit_decisions(p)  # (vertex, k) -> action
  seen, kept = {}, 0
  for step, (v, a) in enumerate(zip(c.vertices, c.actions)):
    k = seen.get(v, 0)
    seen[v] = k + 1
    if step > t and (v, k) in decisions:
      assert a == decisions[(v, k)], (parent, child, step)
      kept += 1
  return kept


def test_an_action_change_keeps_the_decisions_after_it():
  s = _load("select_optimizer_b2")
  rng = np.random.default_rng(1)
  parent = (0, 10, 20, 30, 40)  # sgd, p1..p4
  for step in range(1, 5):
    for _ in range(20):
      child = evolution.change_action(s, s.check_walk(parent), rng, step)
      assert child[:step] == parent[:step] and child[step] != parent[step]
      assert child[step + 1:] == parent[step + 1:]  # same vertices: kept
  # The optimizer changed: the other branch's vertices are new to the
  # walk, every later decision is drawn.
  drawn = {evolution.change_action(s, s.check_walk(parent), rng, 0)
           for _ in range(20)}
  assert all(c[0] == 1 for c in drawn) and len(drawn) == 20
  for _ in range(200):
    child = evolution.mutate(s, parent, rng)
    _keeps_the_parents_later_decisions(s, parent, child)


def test_after_branches_rejoin_the_parents_decision_is_kept():
  s = branching_space()
  rng = np.random.default_rng(2)
  sgd = (0, 2, 1, 3)  # sgd, lr 0.3, momentum 0.5, batch 256
  for _ in range(20):
    child = evolution.change_action(s, s.check_walk(sgd), rng, 0)
    # adam, a drawn adam lr, then the parent's batch size at `batch`
    # (a step earlier than in the parent).
    assert child[0] == 1 and len(child) == 3 and child[2] == 3
    assert s.decode(child)["batch_size"] == 256
  back = {evolution.change_action(s, s.check_walk((1, 0, 2)), rng, 0)
          for _ in range(30)}
  assert all(c[0] == 0 and c[3] == 2 for c in back)
  assert len({c[1:3] for c in back}) > 3  # the sgd steps are drawn
  for _ in range(300):
    parent = s.sample_random(rng).actions
    child = evolution.mutate(s, parent, rng)
    _keeps_the_parents_later_decisions(s, parent, child)


def test_loop_mutation_adds_or_removes_one_turn():
  s = _load("stack_layers")
  rng = np.random.default_rng(3)
  parent = s.check_walk((0,) * 6 + (1,))  # 6 layers
  layers = [s.decode(evolution.change_loop(s, parent, rng))["num_layers"]
            for _ in range(200)]
  assert set(layers) == {5, 7}
  assert 0.35 < np.mean(np.array(layers) == 7) < 0.65
  # A loop with a body: a turn (its three decisions) is copied whole, or
  # one layer leaves.
  s = layers_space()
  parent = (0, 0, 1, 0, 2, 0, 1)  # layers (3, 16), (7, 8), stop
  children = {evolution.change_loop(s, s.check_walk(parent), rng)
              for _ in range(100)}
  kernels = {tuple((l["kernel"], l["filters"])
                   for l in s.decode(c)["layers"]) for c in children}
  assert kernels == {((3, 16),), ((7, 8),), ((3, 16), (3, 16), (7, 8)),
                     ((3, 16), (7, 8), (7, 8))}
  assert evolution.turns(s.check_walk(parent)) == [(0, 3), (3, 6)]
  # Without a revisited vertex there is no loop mutation.
  assert evolution.change_loop(s, s.check_walk((1,)), rng) is None


@pytest.mark.parametrize("name", sorted(SPACES))
def test_neighbours_are_every_single_change_once(name):
  """Each neighbour is a valid walk that ends, differs from the parent
  and from every other neighbour; every one-action change of a vertex
  with few actions is among them, and every loop turn added or removed."""
  s = SPACES[name]()
  rng = np.random.default_rng(1)
  for _ in range(20):
    parent = s.sample_random(rng)
    if parent.truncated:
      continue
    near = evolution.neighbours(s, parent.actions, rng)
    assert parent.actions not in near and len(set(near)) == len(near)
    for child in near:
      assert not s.check_walk(child).truncated
    for t, v in enumerate(parent.vertices[:-1]):
      n = int(s.num_actions[v])
      if not 2 <= n <= evolution.NEIGHBOUR_ACTIONS + 1:
        continue
      changed = {c[t] for c in near
                 if c[:t] == parent.actions[:t] and c[t] !=
                 parent.actions[t]}
      for a in set(range(n)) - {parent.actions[t]}:
        # A change whose walk on draws nothing (the parent decided every
        # vertex it reaches) is a neighbour unless max_steps cuts it.
        ways = {evolution.walk_on(s, parent.actions[:t] + (a,), parent,
                                  np.random.default_rng(i))
                for i in range(4)}
        if len(ways) == 1 and not s.check_walk(ways.pop()).truncated:
          assert a in changed
  # A loop: one turn more and one less are neighbours.
  stack = _load("stack_layers")
  near = evolution.neighbours(stack, (0,) * 6 + (1,), rng)
  layers = {stack.decode(c)["num_layers"] for c in near}
  assert {5, 7} <= layers and 6 not in layers


def test_neighbours_sample_the_actions_of_a_wide_vertex():
  s = _load("cifar_cpu")
  rng = np.random.default_rng(0)
  parent = s.sample_random(rng)
  wide = [t for t, v in enumerate(parent.vertices[:-1])
          if s.num_actions[v] > evolution.NEIGHBOUR_ACTIONS + 1]
  near = evolution.neighbours(s, parent.actions, rng)
  for t in wide:
    changed = {c[t] for c in near if c[:t] == parent.actions[:t] and
               c[t] != parent.actions[t]}
    assert len(changed) <= evolution.NEIGHBOUR_ACTIONS


def test_a_parent_with_nothing_to_mutate_gets_a_random_walk():
  b = api.SpaceBuilder("one_walk", start="a")
  b.vertex("a").action("x", "b", key="x", value=1)
  b.vertex("b")
  s = b.build()
  assert evolution.mutate(s, (0,), np.random.default_rng(0)) == (0,)


# ------------------------------------------------ population, tournament
def test_population_ages_out_the_oldest_and_failures_rank_last():
  s = _load("stack_layers")
  algo = algorithms.make_algorithm("evolution", s, seed=0, population_size=3,
                                   tournament_size=2)
  walks = [(0,) * n + (1,) for n in range(5)]
  stats = algo.update(walks[:2], [0.1, float("nan")])
  assert stats == {"population": 2, "aged_out": 0, "population_best": 0.1}
  stats = algo.update(walks[2:], [0.3, 0.2, -math.inf])
  assert stats["aged_out"] == 2 and stats["population"] == 3
  pop = algo.population
  assert pop.walks == walks[2:] and pop.born == [2, 3, 4]
  assert pop.rewards == [0.3, 0.2, None]
  assert pop.rank(2) == -math.inf and pop.best() == 0.3
  # The failure never wins a tournament that has anything else.
  rng = np.random.default_rng(0)
  assert all(pop.tournament(rng, 2) != 2 for _ in range(100))


def test_tournament_picks_the_best_of_its_sample():
  pop = evolution.Population()
  rewards = [0.5, 0.9, 0.1, 0.7, 0.3, 0.8, 0.2, 0.6]
  for i, r in enumerate(rewards):
    pop.add((i,), r)
  rng = np.random.default_rng(7)
  winners = []
  for _ in range(300):
    twin = np.random.default_rng()
    twin.bit_generator.state = rng.bit_generator.state
    sample = twin.choice(len(pop), size=3, replace=False)
    winner = pop.tournament(rng, 3)
    assert winner in sample
    assert rewards[winner] == max(rewards[i] for i in sample)
    winners.append(winner)
  # Not always the overall best (index 1), never the two worst.
  assert 1 in winners and len(set(winners)) > 2
  assert 2 not in winners and 6 not in winners
  assert {pop.tournament(rng, 8) for _ in range(20)} == {1}  # all: the best


def test_first_p_proposals_are_random_search_then_mutations():
  s = _load("select_optimizer_b2")
  reward = tasks.reward_fn_for(s)
  evo = algorithms.make_algorithm("evolution", s, seed=5, population_size=6,
                                  tournament_size=2)
  rnd = algorithms.make_algorithm("random", s, seed=5)
  first = evo.propose(4)
  assert first == rnd.propose(4)  # the same rng, the same draws
  evo.update(first, [reward(s.decode(w)) for w in first])
  # Two more random walks fill the population, then mutations.
  batch = evo.propose(4)
  assert batch[:2] == rnd.propose(2)
  for child in batch[2:]:
    s.check_walk(child)
    # An action change of a member: one p_i differs, or the optimizer
    # (and then every p_i is drawn again).
    assert any(sum(a != b for a, b in zip(child, m)) == 1 or
               child[0] != m[0] for m in first), (child, first)


def test_bad_sizes_are_refused():
  s = _load("stack_layers")
  with pytest.raises(GraphNasError, match="population_size"):
    algorithms.make_algorithm("evolution", s, population_size=1)
  with pytest.raises(GraphNasError, match="tournament_size"):
    algorithms.make_algorithm("evolution", s, population_size=4,
                              tournament_size=5)
  with pytest.raises(SettingError, match="tournament_size=30: must be <= "
                     "population_size"):
    AlgorithmSettings(algorithm="evolution", tournament_size=30).check()
  assert AlgorithmSettings(algorithm="evolution").algorithm_kwargs() == {
      "population_size": 20, "tournament_size": 10, "no_repeats": True,
      "local_step_prob": 0.7}
  assert "population_size" not in AlgorithmSettings(
      algorithm="pqt").algorithm_kwargs()


# ------------------------------------------------------------ checkpoints
def _layers_reward(config):
  layers = config.get("layers", [])
  return -abs(sum(l["kernel"] * l["filters"] for l in layers) - 60)


def _run(algo, s, batches, n=3):
  out = []
  for i in range(batches):
    walks = algo.propose(n)
    out.append(walks)
    rewards = [_layers_reward(s.decode(w)) for w in walks]
    if i == 2:
      rewards[0] = float("nan")  # a failure in the population
    algo.update(walks, rewards)
  return out


def test_state_restore_continues_identically(tmp_path):
  s = layers_space()

  def make(**kw):
    kw = dict(dict(population_size=5, tournament_size=3), **kw)
    return algorithms.make_algorithm("evolution", s, seed=4, **kw)

  a = make()
  _run(a, s, 4)  # past a full population: mutations
  path = str(tmp_path / "ckpt.npz")
  a.save(path, extra={"consumed": 12})
  arrays, meta = checkpoint.read(path)
  assert meta["name"] == "evolution" and not arrays
  assert len(meta["population"]["walks"]) == 5
  assert meta["population"]["born"] == [7, 8, 9, 10, 11]
  after_a = _run(a, s, 5)
  b = make()
  assert b.load(path) == {"consumed": 12}
  assert b.num_updates == 4
  after_b = _run(b, s, 5)
  assert after_a == after_b
  assert a.population.to_json() == b.population.to_json()
  with pytest.raises(GraphNasError, match="population_size 5"):
    make(population_size=6).load(path)
  with pytest.raises(GraphNasError, match="'evolution', not 'random'"):
    algorithms.RandomSearch(s).load(path)


def _toy_search(out_dir, **kw):
  s = _load("select_optimizer_b2")
  algo = algorithms.make_algorithm("evolution", s, seed=1, population_size=6,
                                   tournament_size=3)
  ev = evaluators.FunctionEvaluator(tasks.reward_fn_for(s))
  return search.Search(s, algo, ev, str(out_dir), search.SearchSettings(
      max_trials=24, walks_per_update=3, seed=1, tensorboard=False, **kw))


@pytest.mark.parametrize("checkpoint_every_s", [0.0, 1e9])
def test_an_interrupted_search_resumes_as_an_uninterrupted_one(
    tmp_path, checkpoint_every_s):
  full = _toy_search(tmp_path / "full")
  full.run()
  full.close()
  crashing = _toy_search(tmp_path / "resumed",
                         checkpoint_every_s=checkpoint_every_s)
  orig = crashing._record

  def killed(fin, batch=None):
    row = orig(fin, batch)
    if row["trial_id"] == 13:  # mutations by then (P = 6)
      raise KeyboardInterrupt
    return row
  crashing._record = killed
  with pytest.raises(KeyboardInterrupt):
    crashing.run()
  crashing.close()
  resumed = _toy_search(tmp_path / "resumed",
                        checkpoint_every_s=checkpoint_every_s)
  resumed.run()
  resumed.close()
  with TrialStore(str(tmp_path / "full" / "trials.sqlite")) as a, \
      TrialStore(str(tmp_path / "resumed" / "trials.sqlite")) as b:
    ra, rb = a.trials(), b.trials()
  assert [r["trial_id"] for r in rb] == list(range(24))
  assert [r["walk"] for r in ra] == [r["walk"] for r in rb]
  assert [r["reward"] for r in ra] == [r["reward"] for r in rb]


# --------------------------------------------------- evolution vs random
def _best_of(name, s, reward, seed, trials):
  algo = algorithms.make_algorithm(name, s, seed=seed)
  best = -math.inf
  for _ in range(trials):
    walks = algo.propose(1)
    rewards = [reward(s.decode(w)) for w in walks]
    algo.update(walks, rewards)
    best = max(best, *rewards)
  return best


def test_evolution_beats_random_search_on_stack_layers():
  """150 trials, seeds 0-4, the declared defaults (P 20, S 5). Measured:
  evolution 1.0 (the optimum, 10 layers) in all five; random search 0.896
  (0.99, 0.99, 0.84, 0.91, 0.75)."""
  s = _load("stack_layers")
  reward = tasks.reward_fn_for(s)
  evo = [_best_of("evolution", s, reward, seed, 150) for seed in range(5)]
  rnd = [_best_of("random", s, reward, seed, 150) for seed in range(5)]
  assert np.mean(evo) >= np.mean(rnd) + 0.05, (evo, rnd)
  assert np.mean(evo) >= 0.95, evo


# ------------------------------------------------------------ front doors
def test_api_search_with_evolution(tmp_path):
  s = _load("stack_layers")
  result = api.search(s, tasks.reward_fn_for(s), str(tmp_path / "r"),
                      algorithm="evolution", max_trials=40,
                      population_size=8, tournament_size=3,
                      tensorboard=False)
  with TrialStore(result["store"]) as store:
    assert store.count() == 40
  _, meta = checkpoint.read(str(tmp_path / "r" / "checkpoint.npz"))
  assert meta["name"] == "evolution"
  assert len(meta["population"]["walks"]) == 8
  with pytest.raises(SettingError, match="tournament_size"):
    api.search(s, tasks.reward_fn_for(s), str(tmp_path / "bad"),
               algorithm="evolution", population_size=4, tournament_size=9)


def test_launcher_runs_evolution(tmp_path):
  out = tmp_path / "run"
  r = launch(["--space=stack_layers", "--algorithm=evolution",
              "--max_trials=60", f"--out_dir={out}"], timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  with TrialStore(str(out / "trials.sqlite")) as store:
    rows = store.trials()
  assert len(rows) == 60 and all(r["status"] == "ok" for r in rows)
  assert max(r["reward"] for r in rows) >= 0.9
  _, meta = checkpoint.read(str(out / "checkpoint.npz"))
  assert meta["name"] == "evolution" and meta["population_size"] == 20
  assert len(meta["population"]["walks"]) == 20


@pytest.mark.parametrize("args, words", [
    (["--algorithm=evolution", "--learning_rate=0.1"],
     "--learning_rate (only with --algorithm=pqt or reinforce)"),
    (["--algorithm=pqt", "--population_size=5"],
     "--population_size (only with --algorithm=evolution)"),
    (["--algorithm=evolution", "--tournament_size=30"],
     "--tournament_size=30: must be <= population_size (20)"),
])
def test_launcher_refuses_settings_of_another_algorithm(tmp_path, args,
                                                        words):
  r = launch(["--space=stack_layers", *args, f"--out_dir={tmp_path}"],
             timeout=300)
  assert r.returncode != 0
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1 and words in lines[0], r.stderr[-2000:]
