"""Trial throughput of the executors on a simulated-training evaluator.

  python -m benchmarks.executor_scaling [--sleep=1.0] [--trials=12]

Each trial sleeps a fixed time (simulated training), so the measure is the
executors' scheduling, not the CPU. Prints trials/s for the in-process
executor, and the Ray executor with 1 and 2 workers on a local Ray started
with 2 CPUs, the scaling ratio, and Ray's per-trial overhead
((wall - trials * sleep / workers) / trials).
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from benchmarks import options  # noqa: E402
from graph_nas import search  # noqa: E402
from graph_nas import space as space_lib  # noqa: E402
from graph_nas.search import algorithms, executors  # noqa: E402


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--sleep", type=options.at_least(0.0, float),
                      default=1.0, help="seconds per simulated trial")
  parser.add_argument("--trials", type=options.at_least(1), default=12,
                      help="trials per configuration")
  return parser.parse_args()


class SleepEvaluator:
  def __init__(self, seconds):
    self.seconds = seconds

  def evaluate(self, config, trial_id, seed):
    time.sleep(self.seconds)
    return search.EvalResult("ok", 0.5)


def run(executor, workers_label, trials):
  space = space_lib.load("protos/stack_layers.textproto")
  algo = algorithms.RandomSearch(space, seed=0)
  with tempfile.TemporaryDirectory() as d:
    job = search.Search(space, algo, executor.evaluator if hasattr(
        executor, "evaluator") else None, d, search.SearchSettings(
            max_trials=trials, walks_per_update=2,
            update_policy="async"), executor=executor)
    t0 = time.time()
    job.run()
    wall = time.time() - t0
    job.close()
  rate = trials / wall
  print(f"| {workers_label} | {wall:.2f} | {rate:.3f} |", flush=True)
  return wall


def main():
  args = parse_args()
  import ray  # pylint: disable=import-outside-toplevel
  ev = SleepEvaluator(args.sleep)
  print(f"{args.trials} trials of {args.sleep:.1f} s each\n")
  print("| executor | wall s | trials/s |\n|---|---|---|")
  run(executors.InProcessExecutor(ev), "in-process", args.trials)
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
                   + ("s" if w > 1 else ""), args.trials)
  ray.shutdown()
  n, s = args.trials, args.sleep
  print(f"\nscaling 1 -> 2 workers: {walls[1] / walls[2]:.2f}x (ideal 2.00x)")
  print(f"Ray overhead per trial (1 worker): "
        f"{(walls[1] - n * s) / n * 1000:.0f} ms")


if __name__ == "__main__":
  main()
