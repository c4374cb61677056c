"""Trial throughput of the executors on a simulated-training evaluator.

  python benchmarks/executor_scaling.py [--sleep=1.0] [--trials=12]

Each trial sleeps a fixed time (simulated training), so the measure is the
executors' scheduling, not the CPU. Prints trials/s for the in-process
executor, and the Ray executor with 1 and 2 workers on a local Ray started
with 2 CPUs, the scaling ratio, and Ray's per-trial overhead
((wall - trials * sleep / workers) / trials).
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from absl import app, flags  # noqa: E402

from graph_nas import search
from graph_nas.search import algorithms, executors  # noqa: E402
from graph_nas import space as space_lib  # noqa: E402

_SLEEP = flags.DEFINE_float("sleep", 1.0, "Seconds per simulated trial.")
_TRIALS = flags.DEFINE_integer("trials", 12, "Trials per configuration.")


class SleepEvaluator:
  def __init__(self, seconds):
    self.seconds = seconds

  def evaluate(self, config, trial_id, seed):
    time.sleep(self.seconds)
    return search.EvalResult("ok", 0.5)


def run(executor, workers_label):
  space = space_lib.load("protos/stack_layers.textproto")
  algo = algorithms.RandomSearch(space, seed=0)
  with tempfile.TemporaryDirectory() as d:
    job = search.Search(space, algo, executor.evaluator if hasattr(
        executor, "evaluator") else None, d, search.SearchSettings(
            max_trials=_TRIALS.value, walks_per_update=2,
            update_policy="async"), executor=executor)
    t0 = time.time()
    job.run()
    wall = time.time() - t0
    job.close()
  rate = _TRIALS.value / wall
  print(f"| {workers_label} | {wall:.2f} | {rate:.3f} |", flush=True)
  return wall


def main(argv):
  del argv
  import ray
  ev = SleepEvaluator(_SLEEP.value)
  print(f"{_TRIALS.value} trials of {_SLEEP.value:.1f} s each\n")
  print("| executor | wall s | trials/s |\n|---|---|---|")
  run(executors.InProcessExecutor(ev), "in-process")
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  # Start (and warm) two Ray worker processes, so that worker start-up
  # (seconds each: it imports TensorFlow) is not counted.
  warm = executors.RayExecutor(ev, workers=2)
  for i in range(4):
    warm.submit(executors.TrialJob(i, (), {}, 0, i))
  while warm.in_flight():
    warm.wait_any()
  walls = {}
  for w in (1, 2):
    walls[w] = run(executors.RayExecutor(ev, workers=w), f"ray, {w} worker"
                   + ("s" if w > 1 else ""))
  ray.shutdown()
  n, s = _TRIALS.value, _SLEEP.value
  print(f"\nscaling 1 -> 2 workers: {walls[1] / walls[2]:.2f}x (ideal 2.00x)")
  print(f"Ray overhead per trial (1 worker): "
        f"{(walls[1] - n * s) / n * 1000:.0f} ms")


if __name__ == "__main__":
  app.run(main)
