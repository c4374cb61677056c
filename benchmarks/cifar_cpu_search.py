"""The search itself at CPU budget: graph vs linear vs random on CIFAR-10.

  python benchmarks/cifar_cpu_search.py --trials=24   # ~1.5 h on 2 cores
  python benchmarks/cifar_cpu_search.py --trials=24 --seeds=0,1,2

Three arms, the same child budget as the README demo
(launch/cifar_cpu_demo.sh) and the same number of trials each (default:
12 trials per seed x 2 seeds = 24 trials per arm):

- graph:  PQT (paper settings: lr 1e-3, entropy 0.8, K = 10) on
          protos/cifar_cpu.textproto (1 to 4 layers);
- linear: PQT, same settings, on protos/cifar_cpu_linear.textproto
          (always 4 layers);
- random: uniform random walks on the graph space.

Each (arm, seed) is one launcher run in <out>/<arm>_s<seed> (rerunning
resumes). Then each arm's best child over its seeds is retrained with the
demo's final budget and scored on the test split. Writes
benchmarks/results/cifar_cpu_search.{json,md,png}: mean and spread of the
best validation accuracy, the moving-average reward curves overlaid (the
paper's Fig. 6), the test accuracy of each arm's best child.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

ARMS = {
    "graph": ("protos/cifar_cpu.textproto", "pqt"),
    "linear": ("protos/cifar_cpu_linear.textproto", "pqt"),
    "random": ("protos/cifar_cpu.textproto", "random"),
}
# The README demo's child budget (launch/cifar_cpu_demo.sh).
CHILD = ["--train_examples=5120", "--epochs=2", "--batch_size=32",
         "--child_learning_rate=0.1", "--noaugment", "--eval_examples=2000"]
CONTROLLER = ["--learning_rate=0.001", "--entropy_weight=0.8",
              "--queue_size=10", "--walks_per_update=2", "--pg_weight=0",
              "--nonormalize_advantages", "--nono_repeats"]


def run_arm(arm, seed, trials, out, data_dir):
  space, algorithm = ARMS[arm]
  folder = out / f"{arm}_s{seed}"
  cmd = [sys.executable, "-m", "graph_nas.launch", f"--space={space}",
         f"--algorithm={algorithm}", f"--max_trials={trials}",
         f"--seed={seed}", f"--out_dir={folder}", "--retrain_best=false",
         *CHILD, *(CONTROLLER if algorithm != "random" else
                   [f for f in CONTROLLER if "walks_per_update" in f])]
  if data_dir:
    cmd.append(f"--data_dir={data_dir}")
  t0 = time.time()
  print(f"[{time.strftime('%H:%M:%S')}] {arm} seed {seed}: "
        f"{' '.join(cmd[2:])}", flush=True)
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                        check=False)
  if proc.returncode != 0:
    sys.exit(f"{arm} seed {seed} failed:\n{proc.stderr[-3000:]}")
  return folder, time.time() - t0


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--trials", type=int, default=12,
                      help="trials per (arm, seed) run")
  parser.add_argument("--seeds", default="0,1")
  parser.add_argument("--out", default=str(ROOT / "runs" / "bench_cpu"))
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--window", type=int, default=6)
  parser.add_argument("--final_examples", type=int, default=45000,
                      help="training images of each arm's best child's "
                      "retraining (1 epoch, augmented; the demo's: 45000)")
  args = parser.parse_args()
  seeds = [int(s) for s in args.seeds.split(",")]
  out = pathlib.Path(args.out)

  from graph_nas import report
  from graph_nas.search import evaluators
  from graph_nas.search.store import TrialStore
  from graph_nas.child.settings import TrainSettings

  runs = {arm: [] for arm in ARMS}
  for seed in seeds:  # interleaved: load from other work hits every arm
    for arm in ARMS:
      folder, seconds = run_arm(arm, seed, args.trials, out, args.data_dir)
      with TrialStore(str(folder / "trials.sqlite")) as store:
        trials = store.trials()
      runs[arm].append({"seed": seed, "folder": str(folder),
                        "seconds": seconds, "trials": trials})

  final = TrainSettings(
      data_dir=args.data_dir, train_examples=args.final_examples, epochs=1,
      batch_size=32,
      learning_rate=0.1, augment=True, eval_role="test",
      progress_every_s=30)
  summary = {}
  for arm, arm_runs in runs.items():
    bests = [max(t["reward"] for t in r["trials"] if t["status"] == "ok")
             for r in arm_runs]
    every = [t for r in arm_runs for t in r["trials"] if t["status"] == "ok"]
    best = max(every, key=lambda t: t["reward"])
    print(f"[{time.strftime('%H:%M:%S')}] {arm}: retraining its best child "
          f"(validation {best['reward']:.4f})", flush=True)
    evaluator = evaluators.ChildEvaluator(final, final)
    result = evaluator.finalize(best["config"], str(out / f"{arm}_best"),
                                seed=0)
    summary[arm] = {
        "best_val_per_seed": bests,
        "best_val_mean": statistics.mean(bests),
        "best_val_min": min(bests), "best_val_max": max(bests),
        "mean_reward": statistics.mean(t["reward"] for t in every),
        "failed": sum(t["status"] != "ok" for r in arm_runs
                      for t in r["trials"]),
        "cached": sum(t.get("cached_from") is not None for r in arm_runs
                      for t in r["trials"]),
        "best_config": best["config"],
        "best_test_accuracy": result.get("test_accuracy"),
        "minutes": sum(r["seconds"] for r in arm_runs) / 60,
    }

  RESULTS.mkdir(exist_ok=True)
  (RESULTS / "cifar_cpu_search.json").write_text(json.dumps(
      {"trials": args.trials, "seeds": seeds, "child_budget": CHILD,
       "final_examples": args.final_examples,
       "controller": CONTROLLER, "arms": summary,
       "rewards": {arm: [[t["reward"] if t["status"] == "ok" else None
                          for t in r["trials"]] for r in arm_runs]
                   for arm, arm_runs in runs.items()}}, indent=1))
  # (minutes in the JSON: this invocation only; a resumed run's earlier
  # trials are not in it.)
  lines = ["| arm | best val. accuracy per seed | mean (min-max) | mean "
           "reward of all trials | best child's test accuracy | cached "
           "trials |", "|---|---|---|---|---|---|"]
  for arm, s in summary.items():
    per_seed = ", ".join(f"{v:.4f}" for v in s["best_val_per_seed"])
    test = s["best_test_accuracy"]
    lines.append(f"| {arm} | {per_seed} | {s['best_val_mean']:.4f} "
                 f"({s['best_val_min']:.4f}-{s['best_val_max']:.4f}) | "
                 f"{s['mean_reward']:.4f} | "
                 f"{'-' if test is None else f'{test:.4f}'} | {s['cached']} "
                 "|")
  table = "\n".join(lines)
  (RESULTS / "cifar_cpu_search.md").write_text(table + "\n")
  print(table)

  plt = report._pyplot()  # pylint: disable=protected-access
  fig, ax = plt.subplots(figsize=(7, 4.2))
  for arm, arm_runs in runs.items():
    curves = []
    for r in arm_runs:
      _, moving, _ = report.curves(r["trials"], window=args.window)
      curves.append(moving)
    n = min(len(c) for c in curves)
    xs = list(range(1, n + 1))
    mean = [statistics.mean(c[i] for c in curves) for i in range(n)]
    line, = ax.plot(xs, mean, label=f"{arm} (mean of {len(curves)} seeds)")
    ax.fill_between(xs, [min(c[i] for c in curves) for i in range(n)],
                    [max(c[i] for c in curves) for i in range(n)],
                    color=line.get_color(), alpha=0.15)
  ax.set_xlabel("trial")
  ax.set_ylabel(f"reward (validation accuracy), moving average of "
                f"{args.window}")
  ax.set_title("CIFAR-10, CPU-sized space: graph vs linear vs random "
               "(bands: min-max over seeds)", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(RESULTS / "cifar_cpu_search.png", dpi=120)
  print(f"wrote {RESULTS}/cifar_cpu_search.{{json,md,png}}")


if __name__ == "__main__":
  main()
