"""Screening (graph_nas.search.screening): K candidates per trial, a cheap
scorer picks; the predictor (graph_nas.search.predictor)."""

import os
import re
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from graph_nas import api, space as space_lib
from graph_nas.errors import GraphNasError, SettingError
from graph_nas.search import predictor, screening
from graph_nas.search.store import TrialStore, config_key
from tests import screen_rewards
from tests.conftest import PROTOS, ROOT

QUIET = {"tensorboard": False, "verbose": False}


def _b2():
  return space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))


class _Fixed(screening.Scorer):
  name = "fixed"

  def __init__(self, fn):
    self.fn = fn

  def score(self, walks, configs, history):
    return np.array([self.fn(c) for c in configs], float)


# ------------------------------------------------------------ the choice
def test_choose_takes_the_best_scores_without_exploration():
  space = _b2()
  rng = np.random.default_rng(0)
  walks = [space.sample_random(rng).actions for _ in range(16)]
  configs = [space.decode(w) for w in walks]
  screen = screening.Screen(_Fixed(screen_rewards.optimizer_reward),
                            candidates_per_trial=8, explore=0.0)
  picks, rows = screen.choose(walks, configs, 2, screening.History(), 0)
  scores = [screen_rewards.optimizer_reward(c) for c in configs]
  assert sorted(picks) == sorted(np.argsort(scores)[::-1][:2].tolist())
  assert [r["chosen"] for r in rows].count(True) == 2
  assert all(r["score"] == pytest.approx(s) for r, s in zip(rows, scores))
  assert not any(r["explored"] for r in rows)


def test_choose_explores_the_stated_share():
  space = _b2()
  rng = np.random.default_rng(1)
  explored = 0
  for stream in range(400):
    walks = [space.sample_random(rng).actions for _ in range(4)]
    configs = [space.decode(w) for w in walks]
    screen = screening.Screen(_Fixed(screen_rewards.optimizer_reward),
                              candidates_per_trial=4, explore=0.25)
    _, rows = screen.choose(walks, configs, 1, screening.History(), stream)
    explored += sum(r["explored"] for r in rows)
  assert 0.18 < explored / 400 < 0.32


def test_choose_never_picks_a_walk_that_does_not_decode_or_a_repeat():
  space = _b2()
  rng = np.random.default_rng(2)
  good = space.sample_random(rng).actions
  walks = [(99,), good, good, space.sample_random(rng).actions]
  configs = [None, space.decode(good), space.decode(good),
             space.decode(walks[3])]
  known_key = config_key(configs[3])
  screen = screening.Screen(_Fixed(lambda c: 1.0), candidates_per_trial=4,
                            explore=0.0)
  picks, rows = screen.choose(walks, configs, 1, screening.History(), 0,
                              known=lambda c: config_key(c) == known_key)
  assert picks == [1]  # not the undecodable, not the known, not the copy
  assert rows[0]["score"] is None and rows[2]["score"] is None


def test_unknown_scorer_and_screen_without_candidates_are_one_line(tmp_path):
  with pytest.raises(SettingError, match="screen='magic'"):
    api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "a"),
               screen="magic", candidates_per_trial=4, **QUIET)
  with pytest.raises(SettingError, match="candidates_per_trial=1"):
    api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "b"),
               screen="predictor", candidates_per_trial=1, **QUIET)
  with pytest.raises(SettingError, match="cheap score of image children"):
    api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "c"),
               screen="synflow", candidates_per_trial=4, **QUIET)


def test_auto_is_the_predictor_for_evolution_on_a_function_only():
  """screen="auto" (the default): the predictor, 16 candidates per trial,
  for the evolution searcher on a function or with screen_features; none
  (recorded as 1 candidate) for image children, the controllers, and
  candidates_per_trial=1."""
  from graph_nas.search import settings as settings_lib
  assert settings_lib.AUTO == screening.AUTO
  auto = settings_lib.SearchSettings()
  assert auto.screen == "auto"
  on = auto.resolved("evolution")
  assert (on.screen, on.candidates_per_trial) == ("predictor", 16)
  for off in (auto.resolved("evolution", "none"), auto.resolved("pqt"),
              auto.resolved("random"),
              auto.replace(candidates_per_trial=1).resolved("evolution")):
    assert (off.screen, off.candidates_per_trial) == ("none", 1)
  featured = auto.replace(screen_features="m:f").resolved("pqt", "none")
  assert featured.screen == "predictor"
  explicit = auto.replace(screen="flops", candidates_per_trial=4)
  assert explicit.resolved("pqt", "none") == explicit


def test_default_search_of_a_function_screens_and_records_it(tmp_path):
  """api.search with its defaults screens with the predictor after 10
  trials, records screen="predictor" in the run's identity, and resumes
  a folder of the old default (screen="none") only when told so."""
  result = api.search(_b2(), screen_rewards.optimizer_reward,
                      str(tmp_path / "a"), max_trials=14, **QUIET)
  with TrialStore(result["store"]) as store:
    screened, identity = store.screened(), store.get_meta("identity")
  assert (identity["screen"], identity["candidates_per_trial"]) == (
      "predictor", 16)
  assert sum(r["chosen"] for r in screened) == 4 and len(screened) == 64
  api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "b"),
             max_trials=3, screen="none", **QUIET)
  with pytest.raises(GraphNasError, match=r"holds a search with "
                     r"screen='none', not 'predictor'"):
    api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "b"),
               max_trials=5, **QUIET)
  api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "b"),
             max_trials=5, screen="none", **QUIET)


def test_auto_does_not_screen_a_function_in_early_stopping(tmp_path):
  """A function with a `trial` parameter reports at rungs: with early
  stopping on, screen="auto" screens nothing (measured to help only
  searches scored once per trial); with rungs="none" it screens."""
  def reward(config, trial):
    trial.report(screen_rewards.optimizer_reward(config), 0.5)
    return screen_rewards.optimizer_reward(config)

  assert screening.evaluator_screen(
      api.as_evaluator(reward), (0.25, 0.5)) == "none"
  assert screening.evaluator_screen(api.as_evaluator(reward), ()) == \
      "predictor"
  for out, rungs, screened in (("a", "1/2", False), ("b", "none", True)):
    result = api.search(_b2(), reward, str(tmp_path / out), max_trials=12,
                        rungs=rungs, **QUIET)
    with TrialStore(result["store"]) as store:
      assert bool(store.screened()) == screened
      assert store.get_meta("identity")["screen"] == (
          "predictor" if screened else "none")


def test_auto_does_not_screen_image_children_nor_a_controller(tmp_path):
  """An evaluator whose default_screen is "none" (image children), or a
  controller: screen="auto" screens nothing; on the launcher, a
  screening flag given alone with image children is one line."""
  from graph_nas.search import assemble, evaluators
  from tests.launch_helpers import launch  # pylint: disable=import-outside-toplevel

  class Children(evaluators.FunctionEvaluator):
    default_screen = "none"

  for out, evaluator, algorithm in (
      ("c", Children(screen_rewards.optimizer_reward), "evolution"),
      ("p", evaluators.FunctionEvaluator(screen_rewards.optimizer_reward),
       "pqt")):
    job = assemble.assemble(
        _b2(), evaluator, str(tmp_path / out),
        search=api.settings_lib.SearchSettings(max_trials=12),
        algorithm=api.settings_lib.AlgorithmSettings(algorithm=algorithm))
    result = assemble.run_search(job)
    with TrialStore(str(tmp_path / out / "trials.sqlite")) as store:
      assert store.screened() == []
      assert store.get_meta("identity")["screen"] == "none"
    assert result["result"]["best"] is not None
  proc = launch(["--space=protos/cifar_cpu.textproto",
                 "--candidates_per_trial=8", f"--out_dir={tmp_path / 'i'}"])
  assert proc.stderr.strip().splitlines()[-1] == (
      "error: flags with no effect here: --candidates_per_trial "
      "(--screen=auto is 'none' here (image children); screen with "
      "--screen=predictor or another scorer). Drop them.")
  assert not (tmp_path / "i").exists()
  proc = launch(["--space=protos/select_optimizer_b2.textproto",
                 "--evaluator=tests.screen_rewards:reported_reward",
                 "--screen_explore=0.5", f"--out_dir={tmp_path / 'r'}"])
  assert proc.stderr.strip().splitlines()[-1] == (
      "error: flags with no effect here: --screen_explore (--screen=auto "
      "is 'none' here (--evaluator=tests.screen_rewards:reported_reward "
      "reports at rungs, with early stopping on); screen with "
      "--screen=predictor or another scorer). Drop them.")
  assert not (tmp_path / "r").exists()


# ------------------------------------------------------------- predictor
def test_predictor_ranks_held_out_architectures():
  """Fit on 120 random architectures of select_optimizer B=2, the forest
  ranks 200 others by their reward (rank correlation > 0.5)."""
  space = _b2()
  rng = np.random.default_rng(3)
  walks = [space.sample_random(rng).actions for _ in range(320)]
  rewards = [screen_rewards.optimizer_reward(space.decode(w)) for w in walks]
  scorer = predictor.PredictorScorer(space, seed=0, kappa=0.0)
  history = screening.History(walks[:120], [None] * 120, rewards[:120])
  scores = scorer.score(walks[120:], [None] * 200, history)
  rho = stats.spearmanr(scores, rewards[120:]).correlation
  assert rho > 0.5, rho


def test_predictor_features_of_a_loop_count_its_turns():
  space = space_lib.load(str(PROTOS / "stack_layers.textproto"))
  feats = predictor.WalkFeatures(space)
  x = feats([(0, 0, 0, 1), (1,)])
  visits = feats.columns.index("visits(stack)")
  assert x[0, visits] == 4 and x[1, visits] == 1
  # The linear twin's walks are replayed on the graph: the same features.
  twin = space.linear_twin(unroll=6)
  tw = predictor.WalkFeatures(twin)
  assert tw.columns == feats.columns


def _p_mean(config):
  """A user's features of select_optimizer B=2: how far p1..p4 are from
  70 in all, and whether it is adam (the order of p1..p4 is lost)."""
  return [sum(abs(config[f"p{i}"] - 70) for i in range(1, 5)),
          float(config["optimizer"] == "adam")]


def test_predictor_learns_from_the_users_features_in_place_of_the_walks():
  """features=fn: the forest sees fn(config) only (here 2 numbers that
  say the reward: it ranks better than on the walk), and a candidate
  whose features equal a finished trial's is scored last (NaN)."""
  space = _b2()
  rng = np.random.default_rng(5)
  walks = [space.sample_random(rng).actions for _ in range(260)]
  configs = [space.decode(w) for w in walks]
  rewards = [screen_rewards.optimizer_reward(c) for c in configs]
  history = screening.History(walks[:40], configs[:40], rewards[:40])
  own = predictor.PredictorScorer(space, seed=0, kappa=0.0,
                                  features=_p_mean)
  plain = predictor.PredictorScorer(space, seed=0, kappa=0.0)
  held_w, held_c = walks[40:], configs[40:]
  s_own = own.score(held_w, held_c, history)
  s_plain = plain.score(held_w, held_c, history)
  seen = {tuple(_p_mean(c)) for c in configs[:40]}
  twins = np.array([tuple(_p_mean(c)) in seen for c in held_c])
  np.testing.assert_array_equal(np.isnan(s_own), twins)
  assert not np.isnan(s_plain).any() and (~twins).sum() > 150
  y = np.asarray(rewards[40:])[~twins]
  rho_own = stats.spearmanr(s_own[~twins], y).correlation
  rho_plain = stats.spearmanr(s_plain[~twins], y).correlation
  assert own._x(held_w[:3], held_c[:3]).shape == (3, 2)
  assert rho_own > 0.95 and rho_own > rho_plain + 0.03, (rho_own, rho_plain)
  # A walk of another architecture with a trial's features: no score.
  twin = dict(configs[0], p1=configs[0]["p2"], p2=configs[0]["p1"])
  twin_walk = space.walk_of(twin)
  assert _p_mean(twin) == _p_mean(configs[0])
  got = own.score([twin_walk, walks[100]], [twin, configs[100]], history)
  assert np.isnan(got[0]) and np.isfinite(got[1])


def test_predictor_features_that_are_no_numbers_are_one_error():
  space = _b2()
  rng = np.random.default_rng(6)
  walks = [space.sample_random(rng).actions for _ in range(12)]
  configs = [space.decode(w) for w in walks]
  history = screening.History(walks, configs, [0.0] * 12)

  def ragged(config):
    return [1.0] * (1 + config["p1"] % 2 + (config["p2"] > 50))

  def broken(config):
    return config["no_such_key"]

  for fn, message in ((ragged, r"features ragged must give \d finite numbers "
                       r"for every config; got \["),
                      (lambda c: [float("nan")], "finite numbers"),
                      (broken, "features broken failed on .*KeyError")):
    scorer = predictor.PredictorScorer(space, features=fn)
    with pytest.raises(GraphNasError, match=message):
      scorer.score(walks, configs, history)
  with pytest.raises(GraphNasError, match="features must be a function"):
    predictor.PredictorScorer(space, features=[1, 2])


def test_a_search_screens_with_the_predictor_on_the_users_features(tmp_path):
  """api.search(screen="predictor", screen_features=fn): the predictor
  (with the search's screen_min_trials) scores every candidate on fn."""
  seen = []

  def features(config):
    seen.append(config)
    return _p_mean(config)

  result = api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path),
                      max_trials=25, screen="predictor",
                      screen_features=features, candidates_per_trial=6,
                      screen_min_trials=12, **QUIET)
  with TrialStore(result["store"]) as store:
    screened, trials = store.screened(), store.trials()
  assert len(trials) == 25
  assert {r["scorer"] for r in screened} == {"predictor"}
  assert sum(r["chosen"] for r in screened) == 13  # after the first 12
  # fn saw the trials it was fit on and every scored candidate.
  keys = {config_key(c) for c in seen}
  assert {config_key(r["config"]) for r in screened} <= keys
  assert {config_key(t["config"]) for t in trials[:12]} <= keys
  # Without the predictor it is one line naming the keyword.
  with pytest.raises(SettingError, match=r"screen_features=.*features.*only "
                     r"with screen='predictor' \(got screen='none'\)"):
    api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "x"),
               max_trials=5, screen="none", screen_features=features,
               **QUIET)
  assert not (tmp_path / "x").exists()


def test_predictor_refit_schedule_depends_on_the_count_only():
  p = predictor.PredictorScorer(_b2(), min_trials=10)
  sizes = [p.fit_size(n) for n in range(10, 60)]
  assert sizes[0] == 10 and sizes == sorted(sizes)
  assert p.fit_size(33) == p.fit_size(33)
  assert all(n - s <= max(1, 0.1 * n) + 1 for n, s in
             zip(range(10, 60), sizes))


def _slow_p1(config):
  """Seconds of a made-up child of select_optimizer B=2: 2**(p1 / 25)."""
  return 2.0 ** (config["p1"] / 25.0)


def test_cost_weight_trades_predicted_reward_for_predicted_seconds():
  """With screen_cost_weight, a second forest predicts each child's log2
  seconds; a positive weight picks faster children, and picks by reward
  alone at weight 0 (the scores are the same as without a time model)."""
  space = _b2()
  rng = np.random.default_rng(4)
  walks = [space.sample_random(rng).actions for _ in range(260)]
  configs = [space.decode(w) for w in walks]
  rewards = [screen_rewards.optimizer_reward(c) for c in configs]
  seconds = [_slow_p1(c) for c in configs]
  history = screening.History(walks[:60], configs[:60], rewards[:60],
                              seconds[:60])
  test_walks, test_configs = walks[60:], configs[60:]
  plain = predictor.PredictorScorer(space, seed=0)
  timed = predictor.PredictorScorer(space, seed=0, cost_weight=0.2)
  free = predictor.PredictorScorer(space, seed=0, cost_weight=0.0)
  s_plain = plain.score(test_walks, test_configs, history)
  s_timed = timed.score(test_walks, test_configs, history)
  np.testing.assert_array_equal(
      free.score(test_walks, test_configs, history), s_plain)
  assert free.predict_log2_seconds(test_walks) is None
  # The time model ranks the held-out children by their seconds.
  slower = timed.predict_log2_seconds(test_walks)
  rho = stats.spearmanr(slower, [np.log2(s) for s in seconds[60:]])
  assert rho.correlation > 0.8, rho
  top = lambda s: np.argsort(-s)[:20]  # noqa: E731
  secs = np.asarray(seconds[60:])
  assert secs[top(s_timed)].mean() < 0.8 * secs[top(s_plain)].mean()
  # The penalty is measured from the median of the trials fit on.
  assert abs(np.median(timed.predict_log2_seconds(walks[:60]))) < 0.5


def test_a_trial_stopped_early_counts_its_seconds_for_the_whole_budget():
  from graph_nas.search.loop import _full_budget_seconds
  assert _full_budget_seconds({"seconds": 10.0, "budget_fraction": 0.25}) \
      == 40.0
  assert _full_budget_seconds({"seconds": 10.0, "budget_fraction": None}) \
      == 10.0
  assert _full_budget_seconds({"seconds": None, "budget_fraction": 1.0}) \
      is None
  history = screening.History([(0,)], [None], [0.5], [None])
  assert np.isnan(history.seconds[0])


def test_screen_cost_weight_is_a_setting_of_the_predictor(tmp_path):
  with pytest.raises(SettingError, match="screen_cost_weight=-1"):
    api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "b"),
               screen="predictor", candidates_per_trial=4,
               screen_cost_weight=-1, **QUIET)
  api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "c"),
             screen="predictor", candidates_per_trial=4, screen_min_trials=4,
             screen_cost_weight=0.05, max_trials=10, **QUIET)
  with TrialStore(str(tmp_path / "c" / "trials.sqlite"),
                  read_only=True) as store:
    assert len(store.trials()) == 10
    assert store.screened(chosen=False)  # it screened


# --------------------------------------------------------------- the loop
@pytest.mark.parametrize("algorithm", ["evolution", "random", "pqt"])
def test_screened_search_records_candidates_never_as_trials(tmp_path,
                                                            algorithm):
  out = str(tmp_path / algorithm)
  extra = {"hidden_dim": 8, "embedding_dim": 4} if algorithm == "pqt" else {}
  result = api.search(_b2(), screen_rewards.optimizer_reward, out,
                      max_trials=30, walks_per_update=2,
                      algorithm=algorithm, screen="predictor",
                      candidates_per_trial=4, screen_min_trials=10, **extra,
                      **QUIET)
  with TrialStore(result["store"]) as store:
    trials, screened = store.trials(), store.screened()
  assert len(trials) == 30
  assert screened, "no screening happened"
  chosen = [r for r in screened if r["chosen"]]
  out_rows = [r for r in screened if not r["chosen"]]
  assert len(out_rows) == 3 * len(chosen)
  # Every chosen candidate is a trial, in order; no screened-out one is.
  first = len(trials) - len(chosen)
  # (a screening's rows are in proposal order, its trials in pick order)
  assert sorted(r["walk"] for r in chosen) == sorted(
      t["walk"] for t in trials[first:])
  assert result["timing"]["screened_out"] == len(out_rows)
  if algorithm == "evolution":  # what a user sees: the table and the page
    top = open(os.path.join(out, "top_trials.md"), encoding="utf-8").read()
    assert (f"Screening (predictor): {len(screened)} candidates scored, "
            f"{len(chosen)} trained") in top
    from graph_nas.report import html  # pylint: disable=import-outside-toplevel
    page = html.build_html(out, space=_b2())
    assert "<h2>Screening</h2>" in page and "screened out" in page


def test_a_screen_function_decides_what_runs(tmp_path):
  """explore 0: every trial is the function's favourite of its 8."""
  def favourite(config):  # a local function: the in-process executor
    return -abs(config["p1"] - 10)
  result = api.search(_b2(), screen_rewards.optimizer_reward,
                      str(tmp_path), max_trials=20, screen=favourite,
                      candidates_per_trial=8, screen_explore=0.0,
                      algorithm="random", **QUIET)
  with TrialStore(result["store"]) as store:
    screened = store.screened()
    trials = store.trials()
  by_key = {}
  for r in screened:
    by_key.setdefault(r["screen_key"], []).append(r)
  assert len(by_key) == 20 and len(trials) == 20
  for rows in by_key.values():
    best = max(r["score"] for r in rows if r["score"] is not None)
    assert [r["score"] for r in rows if r["chosen"]] == [best]
  assert {r["scorer"] for r in screened} == {"favourite"}


def test_local_candidates_are_the_neighbours_of_the_best_trials():
  space = _b2()
  rng = np.random.default_rng(0)
  walks = [space.sample_random(rng).actions for _ in range(12)]
  configs = [space.decode(w) for w in walks]
  rewards = [screen_rewards.optimizer_reward(c) for c in configs]
  # The best architecture twice: it counts once among the N best.
  best = int(np.argmax(rewards))
  history = screening.History(walks + [walks[best]],
                              configs + [configs[best]],
                              rewards + [rewards[best]])
  screen = screening.Screen(_Fixed(lambda c: 0.0), candidates_per_trial=2,
                            explore=0.0, seed=3, neighbors=2)
  got = screen.local_candidates(space, history, stream=5)
  order = sorted(range(12), key=lambda i: -rewards[i])
  from graph_nas.search import evolution  # pylint: disable=import-outside-toplevel
  first = evolution.neighbours(space, walks[order[0]],
                               np.random.default_rng([3, 7927, 5]))
  assert got[:len(first)] == first
  second = set(got[len(first):])
  assert second and all(
      sum(a != b for a, b in zip(w, walks[order[1]])) >= 1 for w in second)
  assert got == screen.local_candidates(space, history, stream=5)
  assert screening.Screen(_Fixed(lambda c: 0.0), candidates_per_trial=2,
                          explore=0.0).local_candidates(
                              space, history, 5) == []


def test_local_candidates_are_screened_and_run(tmp_path):
  """explore 0 and a scorer that prefers a neighbour of the best: the
  trials after the first screening are local candidates."""
  result = api.search(_b2(), screen_rewards.optimizer_reward,
                      str(tmp_path), max_trials=20, algorithm="random",
                      screen="predictor", candidates_per_trial=2,
                      screen_min_trials=8, screen_neighbors=1,
                      screen_explore=0.0, **QUIET)
  with TrialStore(result["store"]) as store:
    screened, trials = store.screened(), store.trials()
  assert len(trials) == 20
  per_key = {}
  for r in screened:
    per_key.setdefault(r["screen_key"], []).append(r)
  # Each screening scored the 2 proposals and the best trial's neighbours.
  assert per_key and all(len(rows) > 2 for rows in per_key.values())
  with pytest.raises(SettingError, match="screen_neighbors"):
    api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "x"),
               max_trials=2, screen_neighbors=-1, **QUIET)


@pytest.mark.parametrize("neighbors", [0, 2])
def test_screened_search_resumes_as_an_uninterrupted_one(tmp_path,
                                                         neighbors):
  kw = dict(max_trials=24, walks_per_update=3, screen="predictor",
            candidates_per_trial=4, screen_min_trials=6,
            screen_neighbors=neighbors, **QUIET)
  api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "full"),
             **kw)
  api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "cut"),
             **dict(kw, max_trials=12))
  api.search(_b2(), screen_rewards.optimizer_reward, str(tmp_path / "cut"),
             **kw)
  with TrialStore(str(tmp_path / "full" / "trials.sqlite")) as a, \
      TrialStore(str(tmp_path / "cut" / "trials.sqlite")) as b:
    assert [t["walk"] for t in a.trials()] == [t["walk"] for t in b.trials()]
    assert ([(r["screen_key"], r["walk"], r["chosen"]) for r in a.screened()]
            == [(r["screen_key"], r["walk"], r["chosen"])
                for r in b.screened()])


def test_sigkill_mid_trial_of_a_screened_search_loses_nothing(tmp_path):
  out = tmp_path / "run"
  marker = tmp_path / "hung"
  args = ["--space=protos/select_optimizer_b2.textproto",
          "--evaluator=tests.screen_rewards:hang_at_trial",
          "--max_trials=30", "--walks_per_update=2", "--screen=predictor",
          "--candidates_per_trial=4", "--screen_min_trials=6",
          f"--out_dir={out}"]
  env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
             SCREEN_HANG_AT="17", SCREEN_HANG_MARKER=str(marker))
  proc = subprocess.Popen([sys.executable, "-m", "graph_nas.launch", *args],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
  # The event: the evaluator writes the marker at trial 17, then waits.
  import time  # pylint: disable=import-outside-toplevel
  deadline = time.time() + 240
  while not marker.exists() and proc.poll() is None and \
      time.time() < deadline:
    time.sleep(0.05)
  assert marker.exists(), proc.stderr.read().decode()[-2000:] \
      if proc.poll() is not None else "timeout"
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  db = str(out / "trials.sqlite")
  with sqlite3.connect(db) as conn:
    before = conn.execute("SELECT trial_id, walk, reward FROM trials "
                          "ORDER BY trial_id").fetchall()
    screened_before = conn.execute("SELECT COUNT(*) FROM screened"
                                   ).fetchone()[0]
  assert [r[0] for r in before] == list(range(17))
  assert screened_before > 0
  env["SCREEN_HANG_AT"] = "-1"
  done = subprocess.run([sys.executable, "-m", "graph_nas.launch", *args],
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  with sqlite3.connect(db) as conn:
    after = conn.execute("SELECT trial_id, walk, reward FROM trials "
                         "ORDER BY trial_id").fetchall()
    keys = conn.execute("SELECT screen_key, COUNT(*) FROM screened GROUP BY "
                        "screen_key").fetchall()
  assert [r[0] for r in after] == list(range(30))
  assert after[:17] == before
  assert all(n == 8 for _, n in keys), keys  # no screening recorded twice


def test_screening_with_a_process_pool_async_and_early_stopping(tmp_path):
  result = api.search(_b2(), screen_rewards.curve_reward_pid, str(tmp_path),
                      max_trials=16, executor="process", workers=2,
                      trials_per_worker=0, update_policy="async",
                      screen="predictor", candidates_per_trial=3,
                      screen_min_trials=4, screen_cost_weight=0.05,
                      rungs="1/4,1/2", **QUIET)
  with TrialStore(result["store"]) as store:
    trials, screened, rungs = store.trials(), store.screened(), store.rungs()
    timing = store.get_meta("last_run_timing")
  assert len(trials) == 16 and all(t["status"] == "ok" for t in trials)
  # Workers that run several trials (rung reports over the same pipe);
  # the time no child ran is a share of the wall time.
  assert len({t["metrics"]["pid"] for t in trials}) == 2
  assert 0.0 <= timing["outside_evaluation_share"] <= 1.0
  assert any(t["budget_fraction"] < 1 for t in trials)  # some stopped
  assert rungs
  chosen = {r["walk"] for r in screened if r["chosen"]}
  assert chosen and chosen <= {t["walk"] for t in trials}
  assert len(screened) == 3 * sum(r["chosen"] for r in screened)


def test_the_launcher_takes_screen_features_by_name(tmp_path):
  from tests.launch_helpers import ENV, launch  # pylint: disable=import-outside-toplevel
  log = tmp_path / "calls.txt"
  base = ["--space=protos/select_optimizer_b2.textproto", "--max_trials=20",
          "--notensorboard"]
  done = launch([*base, "--screen=predictor", "--candidates_per_trial=6",
                 "--screen_features=tests.screen_rewards:optimizer_features",
                 f"--out_dir={tmp_path / 'a'}"],
                env=dict(ENV, SCREEN_FEATURES_LOG=str(log)))
  assert done.returncode == 0, done.stderr[-2000:]
  with TrialStore(str(tmp_path / "a" / "trials.sqlite")) as store:
    scored = len(store.screened())
    assert scored == 60 and len(store.trials()) == 20
  # Each scored candidate and each trial fit on: features computed once.
  assert scored <= len(log.read_text().splitlines()) <= scored + 20
  bad = launch([*base, "--screen=predictor", "--candidates_per_trial=6",
                "--screen_features=tests.screen_rewards:nope",
                f"--out_dir={tmp_path / 'b'}"])
  assert bad.returncode != 0
  assert bad.stderr.strip().splitlines()[-1] == (
      "error: --screen_features=tests.screen_rewards:nope: module "
      "'tests.screen_rewards' has no 'nope'")
  assert not (tmp_path / "b").exists()
  off = launch([*base, "--screen=none", "--screen_features=tests."
                "screen_rewards:optimizer_features",
                f"--out_dir={tmp_path / 'c'}"])
  assert off.stderr.strip().splitlines()[-1] == (
      "error: flags with no effect here: --screen_features (only with "
      "--screen=predictor or auto). Drop them.")
  assert not (tmp_path / "c").exists()


def test_the_readme_screen_features_example_runs_as_printed(tmp_path):
  readme = (ROOT / "README.md").read_text()
  section = readme.split("**Tell the predictor what you know**")[1].split(
      "**How well do cheap scores rank?**")[0]
  code, = re.findall(r"```python\n(.*?)\n```", section, re.S)
  assert "screen_features=features" in code
  (tmp_path / "features_example.py").write_text(code + "\n")
  proc = subprocess.run([sys.executable, "features_example.py"],
                        cwd=tmp_path, capture_output=True, text=True,
                        check=False, timeout=240,
                        env=dict(os.environ, PYTHONPATH=str(ROOT)))
  assert proc.returncode == 0, proc.stderr[-2000:]
  reward, config = proc.stdout.strip().splitlines()[-1].split(" ", 1)
  assert float(reward) > 0 and "'optimizer'" in config
  with TrialStore(str(tmp_path / "runs" / "features" / "trials.sqlite")) as s:
    assert len(s.trials()) == 60
    assert {r["scorer"] for r in s.screened()} == {"predictor"}

