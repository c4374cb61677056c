"""benchmarks/halving_replay.py: a stored search replayed with another eta."""

import sqlite3

from benchmarks import halving_replay
from graph_nas import api
from tests import learning_curves as lc
from tests.conftest import PROTOS


def test_replay_with_the_runs_own_eta_gives_its_stops_and_a_stricter_one_trains_less(
    tmp_path):
  task = lc.CurveTask(tmp_path / "steps")
  out = api.search(str(PROTOS / "select_optimizer_b4.textproto"), task,
                   str(tmp_path / "run"), max_trials=30, rungs="1/4,1/2",
                   eta=2, tensorboard=False, sync_store=False, verbose=False)
  db = out["store"]
  rungs, trials = halving_replay.stored_trials(db)
  assert rungs == (0.25, 0.5)
  same = halving_replay.replay(rungs, trials, 2)
  with sqlite3.connect(db) as conn:
    stored = [n for (n,) in conn.execute(
        "SELECT COUNT(*) FROM trials WHERE cached_from IS NULL "
        "GROUP BY rung ORDER BY rung")]
    fractions, best = conn.execute(
        "SELECT SUM(budget_fraction), MAX(CASE WHEN rung = 2 THEN reward END)"
        " FROM trials WHERE cached_from IS NULL").fetchone()
  assert len(trials) == sum(stored) and 0 < stored[0] < len(trials)
  assert same["stops"] == stored
  assert abs(same["budgets"] - fractions) < 1e-9
  assert same["best"][0] == best
  # (This seeded run's trials never need a score eta 2 did not measure.)
  stricter = halving_replay.replay(rungs, trials, 4)
  assert stricter is not None
  assert stricter["budgets"] < same["budgets"]
  assert stricter["stops"][0] > same["stops"][0]
  assert stricter["seconds"] < same["seconds"]
