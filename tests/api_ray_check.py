"""api.search on the Ray executor, run by tests/test_api.py in a subprocess
(Ray inside the pytest process can crash it later; see ray_checks.py).

  python -m tests.api_ray_check OUT_DIR   -> prints "RESULT <json>"
"""

import json
import os
import sys

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def main(out_dir):
  import ray
  from graph_nas import api
  from graph_nas.search.store import TrialStore
  from tests import api_rewards
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  try:
    res = api.search("protos/stack_layers.textproto",
                     api_rewards.reward_with_metrics, out_dir,
                     algorithm="random", max_trials=4, walks_per_update=2,
                     executor="ray", workers=2, reuse_results=False,
                     executor_kwargs={"cpus_per_child": 1})
    with TrialStore(res["store"]) as store:
      rows = store.trials()
  finally:
    ray.shutdown()
  return {"statuses": [r["status"] for r in rows],
          "rewards_match": all(r["reward"] == api_rewards.reward(r["config"])
                               for r in rows),
          "worker_pids": sorted({r["metrics"]["pid"] for r in rows}),
          "driver_pid": os.getpid(),
          "best": res["best"]["reward"]}


if __name__ == "__main__":
  print("RESULT " + json.dumps(main(sys.argv[1])))
