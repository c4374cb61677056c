"""Ray checks, run by tests/test_executors.py in a subprocess.

Ray started inside the pytest process (which also runs TensorFlow) can crash
that process later; a subprocess keeps every test run clean. Prints one line
"RESULT <json>".
"""

import json
import os
import sys

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def toy_searches(tmp):
  from graph_nas import search, space as space_lib
  from graph_nas.search import algorithms, executors
  from graph_nas.search import evaluators, tasks
  from graph_nas.search.store import TrialStore
  from tests.conftest import PROTOS
  out = {}
  for policy in ("sync", "async"):
    space = space_lib.load(str(PROTOS / "stack_layers.textproto"))
    evaluator = evaluators.FunctionEvaluator(tasks.reward_fn_for(space))
    ex = executors.RayExecutor(evaluator, workers=2, cpus_per_child=1)
    algo = algorithms.make_algorithm("reinforce", space, seed=0,
                                     hidden_dim=16, embedding_dim=8)
    d = os.path.join(tmp, policy)
    job = search.Search(space, algo, evaluator, d, search.SearchSettings(
        max_trials=12, walks_per_update=4, update_policy=policy),
                        executor=ex)
    job.run()
    job.close()
    with TrialStore(os.path.join(d, "trials.sqlite")) as store:
      rows = store.trials()
    out[policy] = {
        "ids": [r["trial_id"] for r in rows],
        "statuses": [r["status"] for r in rows],
        "rewards_match": all(r["reward"] == tasks.stack_layers_reward(
            r["config"]) for r in rows),
        "updates": algo.num_updates}
  return out


def worker_kills(tmp):
  from graph_nas.search import executors
  from tests.test_executors import KillOnceEvaluator, _drain, _jobs
  out = {}
  for retries in (1, 0):
    ev = KillOnceEvaluator(2, os.path.join(tmp, f"marker{retries}"))
    ex = executors.RayExecutor(ev, workers=2, retries=retries)
    try:
      res = _drain(ex, _jobs(4))
    finally:
      ex.shutdown()
    out[str(retries)] = {str(r.job.trial_id): [r.status, r.reason]
                         for r in res}
  return out


def halving(tmp):
  """An async search with early stopping on two Ray workers (the rung
  reports travel through the executor's mailbox actor)."""
  from graph_nas import search, space as space_lib
  from graph_nas.search import algorithms, evaluators, executors
  from graph_nas.search import halving as halving_lib
  from graph_nas.search.store import TrialStore
  from tests import learning_curves as lc
  from tests.conftest import PROTOS
  space = space_lib.load(str(PROTOS / "select_optimizer_b4.textproto"))
  evaluator = evaluators.FunctionEvaluator(
      lc.CurveTask(os.path.join(tmp, "steps")))
  ex = executors.RayExecutor(evaluator, workers=2, cpus_per_child=1)
  algo = algorithms.make_algorithm("random", space, seed=0)
  d = os.path.join(tmp, "run")
  job = search.Search(space, algo, evaluator, d, search.SearchSettings(
      max_trials=10, update_policy="async", rungs="1/4,1/2", eta=2,
      tensorboard=False), executor=ex)
  job.run()
  job.close()
  with TrialStore(os.path.join(d, "trials.sqlite")) as store:
    rows, records = store.trials(), store.rungs()
  table = halving_lib.RungTable((0.25, 0.5), 2)
  replayed = [table.decide(r["job_key"], r["rung"], r["value"])
              for r in records if r["rung"] < 2]
  fresh = [r for r in rows if r["cached_from"] is None]
  return {"trials": len(rows),
          "stopped": sum(r["budget_fraction"] < 1 for r in fresh),
          "full": sum(r["budget_fraction"] == 1 for r in fresh),
          "replayed": replayed == [bool(r["go_on"]) for r in records
                                   if r["rung"] < 2] and
                      len(records) >= len(fresh)}


if __name__ == "__main__":
  import ray
  name, tmp = sys.argv[1], sys.argv[2]
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  try:
    result = {"toy_searches": toy_searches, "worker_kills": worker_kills,
              "halving": halving}[name](tmp)
  finally:
    ray.shutdown()
  print("RESULT " + json.dumps(result))
