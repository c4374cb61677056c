"""Search output folders for the report and policy-graph tests.

`toy_run` runs a real (tiny) search in-process; `image_run` writes
realistic image trials to a trial store directly: configs decoded from
walks of protos/cifar.textproto, multiply-adds and parameters computed
analytically by graph_nas.child.estimate_cost, made-up accuracies.
"""

import math
import time

import numpy as np

from graph_nas import search, space as space_lib
from graph_nas.report import observers as report_observers
from graph_nas.search import algorithms, evaluators, tasks
from graph_nas.search.store import TrialStore
from tests.conftest import PROTOS


def toy_run(out_dir, space_file="select_optimizer_b2.textproto",
            algorithm="pqt", max_trials=12, walks_per_update=3):
  """A real search, stored as the launcher stores one; returns the space."""
  path = str(PROTOS / space_file)
  space = space_lib.load(path)
  kwargs = {} if algorithm == "random" else dict(
      learning_rate=0.05, entropy_weight=0.1, hidden_dim=16,
      embedding_dim=8)
  if algorithm == "pqt":
    # A queue as long as a batch keeps the update's shapes fixed: one trace.
    kwargs["queue_size"] = walks_per_update
  algo = algorithms.make_algorithm(algorithm, space, seed=1, **kwargs)
  settings = search.SearchSettings(
      max_trials=max_trials, walks_per_update=walks_per_update, seed=1)
  job = search.Search(
      space, algo, evaluators.FunctionEvaluator(tasks.reward_fn_for(space)),
      str(out_dir), settings,
      run_info={"space": path, "algorithm": algorithm,
                "max_trials": max_trials},
      observers=report_observers.from_settings(settings, str(out_dir)))
  try:
    job.run()
  finally:
    job.close()
  return space


def image_run(out_dir, n=40, target_flops=None, seed=0, extra=()):
  """Writes n ok image trials (and one failed) to out_dir/trials.sqlite.

  extra: (config, metrics, reward) rows added after the random ones.
  Returns the stored rows' (trial_id, config, metrics, reward)."""
  from graph_nas import child
  from graph_nas.report.dot import space_fingerprint
  path = str(PROTOS / "cifar.textproto")
  space = space_lib.load(path)
  rng = np.random.default_rng(seed)
  rows = []
  for i in range(n):
    walk = space.sample_random(rng)
    config = space.decode(walk.actions)
    cost = child.estimate_cost(config)
    acc = float(np.clip(0.55 + 0.09 * math.log10(cost["flops"] / 1e6)
                        + rng.normal(0, 0.02), 0.1, 0.97))
    metrics = {"val_accuracy": acc, "flops": cost["flops"],
               "params": cost["params"], "total_s": 30.0 + i}
    rows.append((i, walk.actions, config, metrics, acc))
  for j, (config, metrics, reward) in enumerate(extra):
    rows.append((n + j, (), config, metrics, reward))
  now = time.time()
  with TrialStore(str(out_dir / "trials.sqlite")) as store:
    store.set_meta("identity", {"space": space_fingerprint(space),
                                "space_name": space.name,
                                "algorithm": "pqt", "seed": 0,
                                "walks_per_update": 1})
    info = {"space": path, "algorithm": "pqt", "epochs": 20}
    if target_flops is not None:
      info["target_flops"] = target_flops
    store.set_meta("run_info", info)
    for tid, walk, config, metrics, reward in rows:
      store.add_trial(trial_id=tid, batch=tid, walk=walk, config=config,
                      status="ok", reward=reward, seed=tid, metrics=metrics,
                      started=now, finished=now + metrics["total_s"])
    store.add_trial(trial_id=len(rows), batch=len(rows), walk=(), config={},
                    status="failed", reward=None, seed=0, started=now,
                    reason="loss is NaN", finished=now + 1)
  return space, [(r[0], r[2], r[3], r[4]) for r in rows]


_SHARED = {}


def shared_toy_run(tmp_path_factory):
  """One toy run (pqt on select_optimizer_b2, 12 trials) per test session,
  for the test modules that only read it."""
  if "toy" not in _SHARED:
    out = tmp_path_factory.mktemp("shared_toy")
    toy_run(out)
    _SHARED["toy"] = out
  return _SHARED["toy"]
