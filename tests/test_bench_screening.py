"""Tests of the suite's screening and deduplicated baselines (issue 29):
the driver screens as the search loop does; random search without
replacement, TPE answering its repeats from the results."""

import pytest

from benchmarks.suite import driver, tasks, tpe
from graph_nas import api
from graph_nas.errors import SettingError
from graph_nas.search.store import TrialStore, config_key


@pytest.mark.parametrize("method", [
    driver.Method("e", "evolution", {"population_size": 5,
                                     "tournament_size": 2},
                  screen="predictor", candidates_per_trial=4,
                  screen_explore=0.25, screen_min_trials=6),
    driver.Method("r", "random", {}, 3, screen="predictor",
                  candidates_per_trial=3, screen_explore=0.0,
                  screen_min_trials=5),
    driver.Method("n", "evolution", {"population_size": 5,
                                     "tournament_size": 2},
                  screen="predictor", candidates_per_trial=2,
                  screen_explore=0.0, screen_min_trials=6,
                  screen_neighbors=2)])
def test_the_driver_screens_as_the_search_loop_does(method, tmp_path):
  """Same trials for the same seed, same candidates screened out."""
  task = tasks.get("select_optimizer_b2")
  trace = driver.run(task, method, seed=4, budget=30)
  api.search(task.space, task.reward, str(tmp_path / "run"),
             max_trials=30, seed=4, walks_per_update=method.walks_per_update,
             algorithm=method.algorithm, tensorboard=False,
             screen=method.screen,
             candidates_per_trial=method.candidates_per_trial,
             screen_explore=method.screen_explore,
             screen_min_trials=method.screen_min_trials,
             screen_neighbors=method.screen_neighbors, **method.settings)
  with TrialStore(str(tmp_path / "run" / "trials.sqlite")) as store:
    stored = [t["reward"] for t in store.trials()]
    out = len(store.screened(chosen=False))
  assert stored == trace.rewards
  # Screening began once the predictor had its trials, and picked.
  assert out == trace.screened > 0
  plain = driver.run(task, driver.Method("x", method.algorithm,
                                         method.settings,
                                         method.walks_per_update),
                     seed=4, budget=30)
  assert plain.screened == 0 and plain.rewards != trace.rewards


def test_a_method_checks_its_screening_settings():
  m = driver.Method("x", "evolution", screen="predictor",
                    candidates_per_trial=1)
  with pytest.raises(SettingError, match="candidates_per_trial"):
    m.make_screen(tasks.get("stack_layers").space, 0)
  assert driver.Method("y", "evolution").make_screen(
      tasks.get("stack_layers").space, 0) is None
  screen = driver.Method("z", "evolution", screen="predictor",
                         candidates_per_trial=8, kappa=0.0).make_screen(
                             tasks.get("stack_layers").space, 3)
  assert screen.k == 8 and screen.scorer.kappa == 0.0


def test_random_without_replacement_redraws_a_repeat():
  # Stack layers: few architectures, most random walks are short ones.
  task = tasks.get("stack_layers")
  algo = driver.Method("d", "random_dedup").make(task.space, 0)
  keys = [config_key(task.space.decode(algo.propose(1)[0]))
          for _ in range(40)]
  distinct = len(set(keys))
  assert len(set(keys[:8])) == 8  # the likely ones, each once
  dedup = driver.run(task, driver.Method("d", "random_dedup"), 0, 40)
  plain = driver.run(task, driver.Method("r", "random"), 0, 40)
  assert dedup.repeats == 40 - distinct
  assert len(set(plain.rewards)) + 3 < distinct and plain.repeats > 25
  # A repeat comes only after max_draws draws found nothing new.
  few = driver.Method("d", "random_dedup", {"max_draws": 1}).make(
      task.space, 0)
  assert len({config_key(task.space.decode(few.propose(1)[0]))
              for _ in range(40)}) == len(set(plain.rewards))


def test_random_without_replacement_on_the_tasks_features_refuses_twins():
  """With task_features, random_dedup refuses an isomorphic twin (a walk
  whose NAS-Bench-Graph path features an earlier walk had)."""
  from benchmarks.suite import nas_bench_graph  # pylint: disable=import-outside-toplevel
  task = tasks.get("nbg_cora_linear")
  m = driver.Method("p", "random_dedup", task_features=True)
  algo = m.make(task.space, 0, task.features)
  walks = algo.propose(300)
  feats = [tuple(nas_bench_graph.path_features(task.space.decode(w)))
           for w in walks]
  assert len(set(feats)) == 300
  plain = driver.Method("d", "random_dedup").make(task.space, 0)
  twins = [tuple(nas_bench_graph.path_features(task.space.decode(w)))
           for w in plain.propose(300)]
  assert len(set(twins)) < 300  # plain random_dedup keeps some twins
  # A task without features: the store's key, as random_dedup.
  toy = tasks.get("stack_layers")
  assert m.make(toy.space, 0, toy.features).key is None


def test_tpe_dedup_answers_repeats_from_the_results_uncounted():
  task = tasks.get("stack_layers")  # ~30 architectures: TPE repeats
  algo = tpe.OptunaTPE(task.space, seed=0, n_startup_trials=3, dedup=True,
                       max_asks=5)
  seen, kept = set(), 0
  for _ in range(16):
    before = algo.answered
    walk = algo.propose(1)[0]
    key = config_key(task.space.decode(walk))
    if key in seen:  # kept only after max_asks asks, 4 answered
      kept += 1
      assert algo.answered - before == 4
    seen.add(key)
    algo.update([walk], [task.reward(task.space.decode(walk))])
  trials = algo.study.trials
  # Every ask was told: the 16 counted and the repeats answered.
  assert algo.answered > 0 and len(trials) == 16 + algo.answered
  assert all(t.value is not None for t in trials)
  plain = driver.run(task, driver.Method("t", "tpe"), 0, 20)
  dedup = driver.run(task, driver.Method("t", "tpe", {"dedup": True,
                                                      "max_asks": 5}), 0, 20)
  assert dedup.repeats < plain.repeats


def test_the_suites_default_is_what_api_search_does_with_no_setting(tmp_path):
  """search_quality's "default" is api.search's default (screen="auto":
  the predictor on a function), trial for trial; "default_unscreened" is
  the same algorithm without screening."""
  from benchmarks import search_quality
  task = tasks.get("select_optimizer_b2")
  default = search_quality.METHODS["default"]
  assert default.screen == "predictor"
  assert search_quality.METHODS["default_unscreened"].screen == "none"
  trace = driver.run(task, default, seed=3, budget=24)
  api.search(task.space, task.reward, str(tmp_path / "run"), max_trials=24,
             seed=3, tensorboard=False, verbose=False)
  with TrialStore(str(tmp_path / "run" / "trials.sqlite")) as store:
    assert [t["reward"] for t in store.trials()] == trace.rewards
    scored = store.screened()  # every candidate, the chosen ones flagged
  assert len(scored) - sum(r["chosen"] for r in scored) == trace.screened
  assert trace.screened > 0


def test_records_are_found_by_what_ran_not_by_their_label(tmp_path):
  """A record is read for every label that runs the same search today
  (method_key), and never for a label whose definition changed: records
  of the unscreened "default" of before are "default_unscreened"'s."""
  import gzip
  import json
  from benchmarks import search_quality as sq
  old_default = {"label": "default", "algorithm": "evolution",
                 "settings": {}, "walks_per_update": 1}  # before screening
  screened = dict(sq.METHODS["default_predictor"].to_json())
  path = tmp_path / "r.jsonl.gz"
  with gzip.open(path, "wt") as f:
    for seed, spec in ((1000, old_default), (1001, screened)):
      f.write(json.dumps({"task": "stack_layers", "method": spec["label"],
                          "seed": seed, "budget": 5, "spec": spec,
                          "rewards": [0.0] * 5}) + "\n")
  rows = sq.load(str(path), ["default", "default_unscreened",
                             "default_predictor", "random"],
                 ["stack_layers"])
  assert sorted(rows) == [("stack_layers", "default", 1001),
                          ("stack_layers", "default_predictor", 1001),
                          ("stack_layers", "default_unscreened", 1000)]
  assert rows[("stack_layers", "default", 1001)]["method"] == "default"
  # An unscreened method's screening fields change nothing it ran.
  assert sq.method_key(driver.Method("x", "random").to_json()) == \
      sq.method_key(dict(driver.Method("y", "random").to_json(),
                         candidates_per_trial=1, kappa=0.5))
