"""The async update policy: one trial path with sync, the staleness rule,
and resume after SIGKILL."""

import collections
import sqlite3

import numpy as np
import pytest

from graph_nas import search
from graph_nas.search import algorithms, evaluators, executors, tasks
from graph_nas import space as space_lib
from graph_nas.errors import GraphNasError
from tests.conftest import PROTOS

from tests.launch_helpers import launch as _launch
from tests.launch_helpers import launch_and_sigkill


def _space():
  return space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))


class _Recorder:
  """A toy evaluator that records the configs it is given."""

  def __init__(self, space):
    self.reward = tasks.reward_fn_for(space)
    self.configs = []

  def evaluate(self, config, trial_id, seed):
    del trial_id, seed
    self.configs.append(config)
    return search.EvalResult("ok", self.reward(config))


@pytest.mark.parametrize("policy", ["sync", "async"])
def test_a_walk_that_does_not_decode_is_a_failed_trial(tmp_path, policy):
  """Under either policy a walk that does not decode is stored as a failed
  trial with the decode error; the evaluator never sees it, and the search
  goes on."""
  space = _space()
  decode = space.decode

  def decode_some(walk):
    if walk[0] == 0:
      raise GraphNasError("refused for the test", vertex="start")
    return decode(walk)
  space.decode = decode_some
  evaluator = _Recorder(space)
  job = search.Search(space, algorithms.RandomSearch(space, seed=0),
                      evaluator, str(tmp_path), search.SearchSettings(
                          max_trials=16, walks_per_update=2, seed=0,
                          update_policy=policy, reuse_results=False,
                          tensorboard=False))
  job.run()
  rows = job.store.trials()
  job.close()
  assert [r["trial_id"] for r in rows] == list(range(16))
  failed = [r for r in rows if r["walk"][0] == 0]
  assert failed, "some walks start with action 0"
  for r in failed:
    assert r["status"] == "failed" and r["reward"] is None
    assert r["config"] == {}
    assert r["reason"].startswith("decode: ")
    assert "vertex 'start': refused for the test" in r["reason"]
  assert all(r["status"] == "ok" for r in rows if r["walk"][0] != 0)
  assert len(evaluator.configs) == 16 - len(failed)
  assert {} not in evaluator.configs


class _OrderedExecutor:
  """Evaluates in the calling process, `capacity` jobs in flight, handing
  results back first-in-first-out or last-in-first-out. Records, for every
  result, how many updates the algorithm made between the job's
  submission and its result."""

  def __init__(self, evaluator, algorithm, capacity, order):
    self.evaluator, self.algorithm = evaluator, algorithm
    self.capacity, self.order = capacity, order
    self._jobs = collections.deque()
    self.updates_since_proposal = []  # in the order results come back

  def submit(self, job):
    self._jobs.append((job, self.algorithm.num_updates))

  def in_flight(self):
    return len(self._jobs)

  def wait_any(self):
    job, submitted_at = (self._jobs.popleft() if self.order == "fifo"
                         else self._jobs.pop())
    self.updates_since_proposal.append(self.algorithm.num_updates -
                                       submitted_at)
    return executors.evaluate_safely(self.evaluator, job)

  def shutdown(self):
    self._jobs.clear()


@pytest.mark.parametrize("order, capacity", [("fifo", 4), ("lifo", 3)])
def test_stale_results_are_stored_but_not_learned_from(tmp_path, order,
                                                       capacity):
  """async, one walk per update, max_staleness=2: a result whose walk was
  proposed more than 2 updates before it came back is stored, counts as an
  update, but is not given to algorithm.update; the others are."""
  space = _space()
  algo = algorithms.RandomSearch(space, seed=0)
  learned = []  # (walk, reward) given to update, in order
  update = algo.update

  def spy(walks, rewards):
    learned.extend(zip(walks, rewards))
    return update(walks, rewards)
  algo.update = spy
  evaluator = evaluators.FunctionEvaluator(tasks.reward_fn_for(space))
  ex = _OrderedExecutor(evaluator, algo, capacity, order)
  job = search.Search(space, algo, evaluator, str(tmp_path),
                      search.SearchSettings(
                          max_trials=14, walks_per_update=1, seed=0,
                          update_policy="async", max_staleness=2,
                          reuse_results=False, tensorboard=False),
                      executor=ex)
  job.run()
  rows = job.store.trials()
  job.close()
  # Every result is stored, the stale ones too, in the order they came.
  assert [r["trial_id"] for r in rows] == list(range(14))
  assert all(r["status"] == "ok" for r in rows)
  staleness = ex.updates_since_proposal
  assert len(staleness) == 14
  fresh = [(tuple(r["walk"]), r["reward"]) for r, s in zip(rows, staleness)
           if s <= 2]
  assert 0 < len(fresh) < 14, staleness  # both kinds occur
  assert learned == fresh
  assert algo.num_updates == 14  # a stale result still counts as an update




def _rows(db):
  with sqlite3.connect(db, timeout=30) as conn:
    return conn.execute("SELECT trial_id, walk, config, status, reward, "
                        "seed, reason FROM trials ORDER BY trial_id"
                        ).fetchall()


def test_async_resume_after_sigkills_loses_and_repeats_nothing(tmp_path):
  """SIGKILL an async toy search at random moments, three times, resuming
  each time; then finish it. The store passes SQLite's integrity check,
  trial ids run 0..N-1 without a gap or a repeat, and every trial stored
  before a kill is still there, unchanged. (Evolution without TensorBoard:
  no TensorFlow start-up in each of the four starts.)"""
  rng = np.random.default_rng(5)
  n = 110  # > 3 x (30 + 3): never past the end
  out = tmp_path / "run"
  args = ["--space=protos/select_optimizer_b2.textproto",
          "--algorithm=evolution", f"--max_trials={n}",
          "--walks_per_update=3", "--update_policy=async",
          "--max_staleness=1", "--log_every=100", "--notensorboard",
          f"--out_dir={out}"]
  db = str(out / "trials.sqlite")
  kills, snapshots = 0, []
  for _ in range(3):
    kills += launch_and_sigkill(args, rng, most_trials=30)
    snapshots.append(_rows(db))
  assert kills == 3, "the search ran to its end before a kill"
  assert 0 < len(snapshots[0]) < n
  r = _launch(args)
  assert r.returncode == 0, r.stderr[-2000:]
  with sqlite3.connect(db) as conn:
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
  final = _rows(db)
  assert [row[0] for row in final] == list(range(n))
  for before in snapshots:
    assert final[:len(before)] == before
  assert all(row[3] == "ok" for row in final)
