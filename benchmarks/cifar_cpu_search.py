"""Equal wall-clock time on CIFAR-10 at CPU budget: which searcher wins?

  python benchmarks/cifar_cpu_search.py --minutes=30   # seeds 1000-1002, ~4.9 h
  python benchmarks/cifar_cpu_search.py --minutes=6 --seeds=0,1,2  # 69 min
  python benchmarks/cifar_cpu_search.py --study=screening --minutes=15  # ~2.5 h

--study=screening: the default searcher with the demo's screening
(SCREEN), the default without, random search, each with the default early
stopping; results in cifar_cpu_search_screening.{json,md,png}. The
description below is the early-stopping study's (--study=halving).

Three arms on the CPU-sized graph space (protos/cifar_cpu.textproto), each
given the same wall-clock time per seed (`--minutes`, the launcher's
--timeout_minutes: no child is started after it, the running one
finishes), with the README demo's child budget (launch/cifar_cpu_demo.sh:
5,120 images x 2 epochs, batch 32, SGD lr 0.1, 2,000 held-out images):

- default+halving: the default searcher (evolution) with the default
  early stopping (rungs 1/4, 1/2; eta 2);
- random+halving:  random search with the same early stopping;
- random:          random search, every child trained its whole budget
                   (--rungs=none).

Each (arm, seed) is one launcher run in <out>/<arm>_s<seed> (rerunning
resumes it; a finished one is read back). Then, per arm:

- the best full-budget validation accuracy per seed (mean, min-max) and
  the architectures each run saw (fresh children, and how many trained to
  the full budget);
- the arm's best child over its seeds retrained like the demo's (45,000
  images, 2 epochs, augmented) and scored on the 10,000 test images;
- the noise of one score: the arm's best architecture trained again at
  the search budget with `--noise_seeds` other seeds (standard deviation
  of its validation accuracy), the yardstick the arms' differences are
  read against.

Writes benchmarks/results/cifar_cpu_search_halving.{json,md,png}: the
table, the per-seed paired differences, and best-so-far full-budget
validation accuracy against wall-clock minutes (mean over seeds, min-max
band).
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
SPACE = "protos/cifar_cpu.textproto"

# The screening the demo uses (launch/cifar_cpu_demo.sh).
SCREEN = ["--screen=predictor", "--candidates_per_trial=13",
          "--screen_min_trials=10"]
# Each study's arms; the last is the reference the others are paired with.
STUDIES = {
    "halving": {
        "default+halving": [],
        "random+halving": ["--algorithm=random"],
        "random": ["--algorithm=random", "--rungs=none"],
    },
    "screening": {
        "default+screen": SCREEN,
        "default": [],
        "random": ["--algorithm=random"],
    },
}
ARMS = STUDIES["halving"]
# The README demo's child budget (launch/cifar_cpu_demo.sh).
CHILD = ["--train_examples=5120", "--epochs=2", "--batch_size=32",
         "--child_learning_rate=0.1", "--noaugment", "--eval_examples=2000"]


def run_arm(arm, seed, minutes, out, data_dir, arms=None):
  arms = arms or ARMS
  folder = out / f"{arm.replace('+', '_')}_s{seed}"
  if (folder / "done.json").exists():
    return folder, json.loads((folder / "done.json").read_text())["seconds"]
  cmd = [sys.executable, "-m", "graph_nas.launch", f"--space={SPACE}",
         "--max_trials=100000", f"--timeout_minutes={minutes}",
         "--walks_per_update=2", f"--seed={seed}", f"--out_dir={folder}",
         "--retrain_best=false", *CHILD, *arms[arm]]
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
  seconds = time.time() - t0
  (folder / "done.json").write_text(json.dumps({"seconds": seconds}))
  return folder, seconds


def _full(t):
  return t["status"] == "ok" and (t["budget_fraction"] is None or
                                  t["budget_fraction"] >= 1)


def best_so_far(trials, t0):
  """[(minutes since t0, best full-budget validation accuracy)]."""
  out, best = [], None
  for t in sorted(trials, key=lambda t: t["finished"]):
    if _full(t) and t["cached_from"] is None and (best is None or
                                                  t["reward"] > best):
      best = t["reward"]
      out.append(((t["finished"] - t0) / 60, best))
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--study", choices=sorted(STUDIES), default="halving",
                      help="halving: early stopping against none; "
                      "screening: the default with screening, without, "
                      "and random search (each with early stopping)")
  parser.add_argument("--minutes", type=float, default=30.0,
                      help="wall-clock minutes per (arm, seed) search")
  parser.add_argument("--seeds", default="1000,1001,1002",
                      help="report seeds (from 1000: no setting was "
                      "chosen on them)")
  parser.add_argument("--out", default=str(ROOT / "runs" / "bench_halving"))
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--final_examples", type=int, default=45000,
                      help="training images of each arm's best child's "
                      "retraining (2 epochs, augmented; the demo's: 45000)")
  parser.add_argument("--noise_seeds", type=int, default=3,
                      help="extra trainings of each arm's best "
                      "architecture at the search budget (0: none)")
  args = parser.parse_args()
  seeds = [int(s) for s in args.seeds.split(",")]
  out = pathlib.Path(args.out)

  from graph_nas import report
  from graph_nas.search import evaluators
  from graph_nas.search.store import TrialStore
  from graph_nas.child.settings import TrainSettings

  arms = STUDIES[args.study]
  if args.study != "halving":
    out = out.parent / f"bench_{args.study}"
  runs = {arm: [] for arm in arms}
  for seed in seeds:  # interleaved: load from other work hits every arm
    for arm in arms:
      folder, seconds = run_arm(arm, seed, args.minutes, out, args.data_dir,
                                arms)
      with TrialStore(str(folder / "trials.sqlite")) as store:
        trials = store.trials()
        timing = store.get_meta("last_run_timing") or {}
      t0 = min(t["started"] for t in trials)
      runs[arm].append({"seed": seed, "folder": str(folder),
                        "seconds": seconds, "trials": trials, "t0": t0,
                        "search_s": timing.get("wall_s")})

  search_budget = TrainSettings(
      data_dir=args.data_dir, train_examples=5120, epochs=2, batch_size=32,
      learning_rate=0.1, augment=False, eval_examples=2000,
      progress_every_s=0)
  final = TrainSettings(
      data_dir=args.data_dir, train_examples=args.final_examples, epochs=2,
      batch_size=32, learning_rate=0.1, augment=True, eval_role="test",
      progress_every_s=30)
  summary = {}
  for arm, arm_runs in runs.items():
    bests, seen, full = [], [], []
    for r in arm_runs:
      fresh = [t for t in r["trials"] if t["status"] == "ok" and
               t["cached_from"] is None]
      done = [t for t in fresh if _full(t)]
      bests.append(max(t["reward"] for t in done))
      seen.append(len(fresh))
      full.append(len(done))
    every = [t for r in arm_runs for t in r["trials"] if _full(t) and
             t["cached_from"] is None]
    best = max(every, key=lambda t: t["reward"])
    noise = []
    if args.noise_seeds:
      print(f"[{time.strftime('%H:%M:%S')}] {arm}: its best architecture "
            f"again with {args.noise_seeds} seeds", flush=True)
      trainer = evaluators.ChildEvaluator(search_budget)
      for k in range(args.noise_seeds):
        res = trainer.evaluate(best["config"], -1, 10_000 + k)
        noise.append(res.reward)
    print(f"[{time.strftime('%H:%M:%S')}] {arm}: retraining its best child "
          f"(validation {best['reward']:.4f})", flush=True)
    evaluator = evaluators.ChildEvaluator(final, final)
    result = evaluator.finalize(best["config"], str(out / f"{arm}_best"),
                                seed=0)
    summary[arm] = {
        "best_val_per_seed": bests,
        "best_val_mean": statistics.mean(bests),
        "best_val_min": min(bests), "best_val_max": max(bests),
        "architectures_per_seed": seen, "full_budget_per_seed": full,
        "search_minutes_per_seed": [round((r["search_s"] or 0) / 60, 2)
                                    for r in arm_runs],
        "best_config": best["config"], "best_val": best["reward"],
        "best_again_other_seeds": noise,
        "best_test_accuracy": result.get("test_accuracy"),
    }
  noise_all = [v for s in summary.values()
               for v in s["best_again_other_seeds"]]
  one_score_sd = (statistics.mean(
      statistics.stdev(s["best_again_other_seeds"])
      for s in summary.values()) if args.noise_seeds >= 2 else None)

  RESULTS.mkdir(exist_ok=True)
  (RESULTS / f"cifar_cpu_search_{args.study}.json").write_text(json.dumps(
      {"minutes": args.minutes, "seeds": seeds, "child_budget": CHILD,
       "final_examples": args.final_examples, "arms": summary,
       "one_score_sd": one_score_sd, "noise_values": noise_all,
       "curves": {arm: [best_so_far(r["trials"], r["t0"]) for r in rr]
                  for arm, rr in runs.items()}}, indent=1))
  lines = [f"Each arm: {args.minutes:g} minutes of search per seed "
           f"(seeds {args.seeds}), the demo's child budget.", "",
           "| arm | best full-budget val. accuracy per seed | mean "
           "(min-max) | architectures seen per seed | trained to the full "
           "budget | best child's test accuracy |",
           "|---|---|---|---|---|---|"]
  for arm, s in summary.items():
    per_seed = ", ".join(f"{v:.4f}" for v in s["best_val_per_seed"])
    test = s["best_test_accuracy"]
    lines.append(
        f"| {arm} | {per_seed} | {s['best_val_mean']:.4f} "
        f"({s['best_val_min']:.4f}-{s['best_val_max']:.4f}) | "
        f"{', '.join(map(str, s['architectures_per_seed']))} | "
        f"{', '.join(map(str, s['full_budget_per_seed']))} | "
        f"{'-' if test is None else f'{test:.4f}'} |")
  lines += ["", "Paired by seed (same seed, other arm), best full-budget "
            "validation accuracy:", ""]
  names = list(arms)
  pairs = [(a, names[-1]) for a in names[:-1]] + [(names[0], names[1])]
  for a, b in pairs:
    d = [x - y for x, y in zip(summary[a]["best_val_per_seed"],
                               summary[b]["best_val_per_seed"])]
    lines.append(f"- {a} minus {b}: {', '.join(f'{x:+.4f}' for x in d)} "
                 f"(mean {statistics.mean(d):+.4f})")
  if one_score_sd is not None:
    lines += ["", f"Noise of one score: an arm's best architecture trained "
              f"again with {args.noise_seeds} other seeds at the search "
              f"budget varies by a standard deviation of "
              f"{one_score_sd:.4f} (mean over the arms); values: "
              + ", ".join(f"{v:.4f}" for v in noise_all) + "."]
  table = "\n".join(lines)
  (RESULTS / f"cifar_cpu_search_{args.study}.md").write_text(table + "\n")
  print(table)

  plt = report._pyplot()  # pylint: disable=protected-access
  fig, ax = plt.subplots(figsize=(7, 4.2))
  grid = [i * args.minutes / 60 for i in range(61)]
  for arm, arm_runs in runs.items():
    per_seed = []
    for r in arm_runs:
      points = best_so_far(r["trials"], r["t0"])
      per_seed.append([max([v for m, v in points if m <= x], default=None)
                       for x in grid])
    xs = [x for i, x in enumerate(grid)
          if all(c[i] is not None for c in per_seed)]
    idx = [i for i in range(len(grid)) if all(c[i] is not None
                                              for c in per_seed)]
    mean = [statistics.mean(c[i] for c in per_seed) for i in idx]
    line, = ax.plot(xs, mean, label=f"{arm} (mean of {len(per_seed)} seeds)")
    ax.fill_between(xs, [min(c[i] for c in per_seed) for i in idx],
                    [max(c[i] for c in per_seed) for i in idx],
                    color=line.get_color(), alpha=0.15)
  ax.set_xlabel("wall-clock minutes of search")
  ax.set_ylabel("best full-budget validation accuracy")
  ax.set_title(f"CIFAR-10, CPU-sized space, {args.study} study "
               "(bands: min-max over seeds)", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(loc="lower right")
  fig.tight_layout()
  fig.savefig(RESULTS / f"cifar_cpu_search_{args.study}.png", dpi=120)
  print(f"wrote {RESULTS}/cifar_cpu_search_{args.study}.{{json,md,png}}")


if __name__ == "__main__":
  main()
