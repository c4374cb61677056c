"""Tests of the executors: in-process, process pool, Ray (local cluster)."""

import os
import pathlib

import pytest

from graph_nas import algorithms, executors, search, space as space_lib, tasks
from graph_nas.errors import GraphNasError
from graph_nas.store import TrialStore
from tests.conftest import PROTOS

# Nothing of Ray's is written under the home directory in tests.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


class PidEvaluator:
  """Scores 0.5 and reports the process it ran in (picklable)."""

  def evaluate(self, config, trial_id, seed):
    return search.EvalResult("ok", 0.5, {"pid": os.getpid(),
                                         "seed": seed})


class KillOnceEvaluator:
  """Kills its own worker process on `trial` the first time (a marker file
  remembers the first attempt)."""

  def __init__(self, trial, marker):
    self.trial, self.marker = trial, str(marker)

  def evaluate(self, config, trial_id, seed):
    if trial_id == self.trial and not os.path.exists(self.marker):
      pathlib.Path(self.marker).write_text("killed")
      os.kill(os.getpid(), 9)
    return search.EvalResult("ok", 0.25, {"pid": os.getpid()})


def _jobs(n):
  return [executors.TrialJob(i, (i,), {"i": i}, 100 + i, i) for i in range(n)]


def _drain(ex, jobs):
  for j in jobs:
    ex.submit(j)
  out = []
  while ex.in_flight():
    out.append(ex.wait_any())
  return sorted(out, key=lambda f: f.job.trial_id)


def test_in_process_executor_turns_exceptions_into_failures():
  class Boom:
    def evaluate(self, config, trial_id, seed):
      if trial_id == 1:
        raise ValueError("bad child")
      if trial_id == 2:
        raise GraphNasError("dataset missing")
      return search.EvalResult("ok", float("nan"))
  res = _drain(executors.InProcessExecutor(Boom()), _jobs(3))
  assert [r.status for r in res] == ["failed"] * 3
  assert res[0].reason == "non-finite reward nan"
  assert res[1].reason == "ValueError: bad child" and not res[1].fatal
  assert res[2].fatal  # settings errors stop the search


def test_process_pool_runs_each_child_in_a_fresh_process():
  ex = executors.ProcessPoolExecutor(PidEvaluator(), workers=2)
  try:
    res = _drain(ex, _jobs(4))
  finally:
    ex.shutdown()
  pids = [r.metrics["pid"] for r in res]
  assert all(r.status == "ok" for r in res)
  # One child per process: its memory goes back to the OS when it ends.
  assert len(set(pids)) == 4 and os.getpid() not in pids
  assert [r.metrics["seed"] for r in res] == [100, 101, 102, 103]


def test_process_pool_worker_killed_is_a_failed_trial(tmp_path):
  ex = executors.ProcessPoolExecutor(
      KillOnceEvaluator(1, tmp_path / "marker"), workers=1)
  try:
    res = _drain(ex, _jobs(3))
  finally:
    ex.shutdown()
  by_id = {r.job.trial_id: r for r in res}
  assert by_id[1].status == "failed"
  assert "worker process died" in by_id[1].reason
  assert by_id[0].status == "ok" and by_id[2].status == "ok"


@pytest.fixture(scope="module")
def ray_cluster():
  import ray
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  yield ray
  ray.shutdown()



@pytest.mark.parametrize("policy", ["sync", "async"])
def test_ray_executor_runs_a_toy_search(ray_cluster, tmp_path, policy):
  space = space_lib.load(str(PROTOS / "stack_layers.textproto"))
  evaluator = search.ToyEvaluator(tasks.reward_fn_for(space))
  ex = executors.RayExecutor(evaluator, workers=2, cpus_per_child=1)
  algo = algorithms.make_algorithm("reinforce", space, seed=0,
                                   hidden_dim=16, embedding_dim=8)
  job = search.Search(space, algo, evaluator, str(tmp_path),
                      search.SearchSettings(max_trials=12,
                                            walks_per_update=4,
                                            update_policy=policy),
                      executor=ex)
  job.run()
  job.close()
  with TrialStore(str(tmp_path / "trials.sqlite")) as store:
    rows = store.trials()
  assert [r["trial_id"] for r in rows] == list(range(12))
  assert all(r["status"] == "ok" for r in rows)
  for r in rows:
    assert r["reward"] == tasks.stack_layers_reward(r["config"])
  assert algo.num_updates == 3


@pytest.mark.parametrize("retries,status", [(1, "ok"), (0, "failed")])
def test_ray_worker_killed_mid_trial(ray_cluster, tmp_path, retries, status):
  ev = KillOnceEvaluator(2, tmp_path / "marker")
  ex = executors.RayExecutor(ev, workers=2, retries=retries)
  try:
    res = _drain(ex, _jobs(4))
  finally:
    ex.shutdown()
  by_id = {r.job.trial_id: r for r in res}
  assert by_id[2].status == status
  if status == "failed":
    assert "Ray worker lost" in by_id[2].reason
  assert all(by_id[i].status == "ok" for i in (0, 1, 3))


def test_ray_missing_gives_install_hint(monkeypatch):
  import builtins
  real_import = builtins.__import__

  def no_ray(name, *args, **kwargs):
    if name == "ray":
      raise ImportError("No module named 'ray'")
    return real_import(name, *args, **kwargs)
  monkeypatch.setattr(builtins, "__import__", no_ray)
  with pytest.raises(GraphNasError, match=r"pip install \.\[ray\]"):
    executors.RayExecutor(PidEvaluator())
