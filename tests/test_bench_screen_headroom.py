"""Tests of benchmarks/screen_headroom.py: the scorer of known quality and
the driver's scorer override it relies on."""

import numpy as np
import pytest

from benchmarks import screen_headroom
from benchmarks.suite import driver, tasks
from graph_nas.errors import GraphNasError
from graph_nas.search import screening

SCREENED = driver.Method("e", "evolution", {"population_size": 5,
                                            "tournament_size": 2},
                         screen="predictor", candidates_per_trial=8,
                         screen_explore=0.0, screen_min_trials=5)


def test_noisy_truth_is_the_reward_plus_one_fixed_draw_per_architecture():
  task = tasks.get("select_optimizer_b2")
  walks, configs, y = screen_headroom.sample(task, 50)
  assert len({str(sorted(c.items())) for c in configs}) == len(configs) == 50
  exact = screen_headroom.NoisyTruth(task.reward, 0.0, 1.0)
  np.testing.assert_allclose(exact.score(walks, configs, None), y)
  noisy = screen_headroom.NoisyTruth(task.reward, 0.5, 2.0)
  a = noisy.score(walks, configs, None)
  b = noisy.score(walks[::-1], configs[::-1], None)[::-1]
  np.testing.assert_allclose(a, b)  # one draw per architecture, any order
  noise = a - y
  assert np.std(noise) == pytest.approx(1.0, rel=0.35)  # sd 0.5 x scale 2
  assert not noisy.ready(screening.History(walks[:4], configs[:4], y[:4]))
  assert noisy.ready(screening.History(walks[:10], configs[:10], y[:10]))


class Recording(screening.Scorer):
  """The true reward, remembering each pool it scored."""

  def __init__(self, reward):
    self.reward, self.pools = reward, []

  def ready(self, history):
    return len(history) >= 5

  def score(self, walks, configs, history):
    self.pools.append([self.reward(c) for c in configs])
    return np.asarray(self.pools[-1])


def test_the_driver_screens_with_the_scorer_it_is_given():
  task = tasks.get("select_optimizer_b2")
  scorer = Recording(task.reward)
  trace = driver.run(task, SCREENED, seed=3, budget=25, scorer=scorer)
  assert len(scorer.pools) == 25 - 5  # one screening per trial once ready
  # explore 0: each trial after the first 5 is its pool's best by the truth
  assert trace.rewards[5:] == [max(p) for p in scorer.pools]
  assert trace.screened > 0


def test_a_scorer_for_a_method_that_does_not_screen_is_one_error():
  task = tasks.get("select_optimizer_b2")
  with pytest.raises(GraphNasError, match="does not screen"):
    driver.run(task, driver.Method("r", "random"), seed=0, budget=5,
               scorer=Recording(task.reward))
