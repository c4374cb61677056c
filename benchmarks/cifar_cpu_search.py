"""Equal wall-clock time on CIFAR-10 at CPU budget: which searcher wins?

  python -m benchmarks.cifar_cpu_search --minutes=30  # seeds 1000-1002, ~4.9 h
  python -m benchmarks.cifar_cpu_search --minutes=6 --seeds=0,1,2  # 69 min
  python -m benchmarks.cifar_cpu_search --study=screening --minutes=15 \
      --seeds=1000,1001,1002,1003 --final_examples=20000 --noise_seeds=2 \
      --concurrent  # 96 min

--study=screening: the demo's search (the default searcher with the
demo's screening and early stopping, launch/cifar_cpu_demo_search.flags),
the same without screening, and random search with the same early
stopping (until 2026-12-03: the default early stopping, eta 2);
results in cifar_cpu_search_screening.{json,md,png} (in
benchmarks/results/cifar_cpu_search/, as every study's). With
--concurrent the three arms of a seed run at the same time, one
TensorFlow thread each, so that any other load on the machine hits all
three alike; each (arm, seed)'s best child is retrained (three at a time)
and scored on the test split, and the paired differences get 95 %
bootstrap intervals over the seeds. The description below is the
early-stopping study's (--study=halving). --study=screening_params:
the demo's search screening by the parameter count (--screen=params) in
place of the predictor, the demo's search, and random search, as above
(results in cifar_cpu_search_screening_params.*).

Three arms on the CPU-sized graph space (protos/cifar_cpu.textproto), each
given the same wall-clock time per seed (`--minutes`, the launcher's
--timeout_minutes: no child is started after it, the running one
finishes), with the README demo's child budget (launch/cifar_cpu_demo.flags:
4,096 images x 2 epochs since 2026-12-03, 5,120 in the runs recorded
before; batch 32, SGD lr 0.1, 2,000 held-out images):

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

Writes cifar_cpu_search_halving.{json,md,png} in
benchmarks/results/cifar_cpu_search/: the
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
RESULTS = ROOT / "benchmarks" / "results" / "cifar_cpu_search"
SPACE = "protos/cifar_cpu.textproto"

# The demo's screening and early stopping, said once
# (launch/cifar_cpu_demo_search.flags; the demo script reads it too).
DEMO_SEARCH_FLAGS = ROOT / "launch" / "cifar_cpu_demo_search.flags"


def demo_search_flags(screening=True):
  """The flags of DEMO_SEARCH_FLAGS; without its screening ones (those of
  the settings grouped under "screening") when `screening` is false."""
  from graph_nas import options
  from graph_nas.search.settings import SearchSettings
  screen = {"--" + options.flag_name(SearchSettings, n)
            for n, o in options.options(SearchSettings).items()
            if o.group == "screening"}
  lines = [l.strip() for l in DEMO_SEARCH_FLAGS.read_text().splitlines()
           if l.strip().startswith("--")]
  return [l for l in lines if screening or l.split("=")[0] not in screen]


# Each study's arms; the last is the reference the others are paired with.
STUDIES = {
    "halving": {
        "default+halving": [],
        "random+halving": ["--algorithm=random"],
        "random": ["--algorithm=random", "--rungs=none"],
    },
    # The demo's search against the same without screening and random
    # search, all three with the demo's early stopping.
    "screening": {
        "default+screen": demo_search_flags(),
        "default": demo_search_flags(screening=False),
        "random": ["--algorithm=random"] + demo_search_flags(screening=False),
    },
    # The demo's search screening by the parameter count in place of the
    # predictor (the first rung ranks full-budget accuracy with rho 0.46 on
    # 40 fresh architectures, the size with 0.59, nearly independently:
    # results/proxy_rank), against the demo's and random search. (The
    # parameter count needs no trials: it screens from the first.)
    "screening_params": {
        "default+params": [l.replace("--screen=predictor", "--screen=params")
                           for l in demo_search_flags()
                           if not l.startswith("--screen_min_trials")],
        "default+screen": demo_search_flags(),
        "random": ["--algorithm=random"] + demo_search_flags(screening=False),
    },
}
ARMS = STUDIES["halving"]
# The README demo's child budget, said once (launch/cifar_cpu_demo.flags).
DEMO_FLAGS = ROOT / "launch" / "cifar_cpu_demo.flags"
CHILD = [f"--flagfile={DEMO_FLAGS}"]


def demo_budget(data_dir, **changes):
  """The demo's child budget as TrainSettings (read from DEMO_FLAGS through
  the launcher's own flag declarations), with `changes`."""
  from absl import flags
  from graph_nas import options
  from graph_nas.child.settings import TrainSettings
  fv = flags.FlagValues()
  options.define_flags(TrainSettings, fv)
  fv(["demo", f"--flagfile={DEMO_FLAGS}"])
  return options.from_flags(TrainSettings, fv, data_dir=data_dir,
                            progress_every_s=0, **changes)


ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def _arm_cmd(arm, seed, minutes, folder, data_dir, arms):
  cmd = [sys.executable, "-m", "graph_nas.launch", f"--space={SPACE}",
         "--max_trials=100000", f"--timeout_minutes={minutes}",
         "--walks_per_update=2", f"--seed={seed}", f"--out_dir={folder}",
         "--retrain_best=false", *CHILD, *arms[arm]]
  if data_dir:
    cmd.append(f"--data_dir={data_dir}")
  return cmd


def _wait(procs):
  """Waits for every (key, Popen); {key: (returncode, cpu seconds)}."""
  out = {}
  for key, proc in procs:
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out[key] = (proc.returncode, usage.ru_utime + usage.ru_stime)
  return out


def run_seed(seed, minutes, out, data_dir, arms, concurrent):
  """Runs every arm of one seed: {arm: (folder, wall s, cpu s)}.

  concurrent: the arms run at the same time, each with one TensorFlow
  thread, so that whatever else loads the machine loads every arm alike
  (they share its cores evenly); else one after another, each with
  TensorFlow's default threads.
  """
  done, todo = {}, []
  for arm in arms:
    folder = out / f"{arm.replace('+', '_')}_s{seed}"
    if (folder / "done.json").exists():
      d = json.loads((folder / "done.json").read_text())
      done[arm] = (folder, d["seconds"], d.get("cpu_s"))
    else:
      todo.append((arm, folder))
  env = dict(os.environ, **(ONE_THREAD if concurrent else
                            {"TF_CPP_MIN_LOG_LEVEL": "2"}))
  groups = [todo] if concurrent else [[x] for x in todo]
  for group in groups:
    t0, procs, logs = time.time(), [], []
    for arm, folder in group:
      cmd = _arm_cmd(arm, seed, minutes, folder, data_dir, arms)
      print(f"[{time.strftime('%H:%M:%S')}] {arm} seed {seed}: "
            f"{' '.join(cmd[2:])}", flush=True)
      folder.mkdir(parents=True, exist_ok=True)
      log = open(folder.parent / f"{folder.name}.log", "w")  # pylint: disable=consider-using-with
      logs.append(log)
      procs.append(((arm, folder), subprocess.Popen(
          cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)))
    for (arm, folder), (rc, cpu) in _wait(procs).items():
      if rc != 0:
        tail = (folder.parent / f"{folder.name}.log").read_text()[-3000:]
        sys.exit(f"{arm} seed {seed} failed:\n{tail}")
      seconds = time.time() - t0
      (folder / "done.json").write_text(json.dumps(
          {"seconds": seconds, "cpu_s": cpu, "concurrent": concurrent}))
      done[arm] = (folder, seconds, cpu)
    for log in logs:
      log.close()
  return done


def retrain(jobs, final_examples, data_dir, concurrent):
  """Retrains each job's config like the demo's best child; {key: test}.

  jobs: [(key, config, folder)]. Each retraining is its own process
  (`--retrain`), run all at once with one thread each when concurrent.
  """
  results, todo = {}, []
  for key, config, folder in jobs:
    res = folder / "result.json"
    if res.exists():
      results[key] = json.loads(res.read_text()).get("test_accuracy")
      continue
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    todo.append((key, folder))
  env = dict(os.environ, **(ONE_THREAD if concurrent else
                            {"TF_CPP_MIN_LOG_LEVEL": "2"}))
  groups = [todo] if concurrent else [[x] for x in todo]
  for group in groups:
    procs = []
    for key, folder in group:
      cmd = [sys.executable, __file__, "--retrain", str(folder),
             f"--final_examples={final_examples}"]
      if data_dir:
        cmd.append(f"--data_dir={data_dir}")
      print(f"[{time.strftime('%H:%M:%S')}] retraining {key}", flush=True)
      procs.append(((key, folder), subprocess.Popen(
          cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
          stderr=open(folder / "log.txt", "w"))))  # pylint: disable=consider-using-with
    for (key, folder), (rc, _) in _wait(procs).items():
      if rc != 0:
        sys.exit(f"retraining {key} failed:\n"
                 + (folder / "log.txt").read_text()[-3000:])
      results[key] = json.loads(
          (folder / "result.json").read_text()).get("test_accuracy")
  return results


def final_settings(final_examples, data_dir):
  """The retraining of a best child: the demo's (its child budget on
  `final_examples` images, augmented, 2 epochs, scored on the test split)."""
  return demo_budget(data_dir, train_examples=final_examples, epochs=2,
                     augment=True, eval_role="test", eval_examples=None)


def retrain_one(folder, final_examples, data_dir):
  """The `--retrain FOLDER` mode: FOLDER/config.json -> result.json."""
  from graph_nas.search import evaluators
  folder = pathlib.Path(folder)
  config = json.loads((folder / "config.json").read_text())
  final = final_settings(final_examples, data_dir)
  result = evaluators.ChildEvaluator(final, final).finalize(
      config, str(folder / "model"), seed=0)
  (folder / "result.json").write_text(json.dumps(
      {"test_accuracy": result.get("test_accuracy"),
       "status": result.get("status")}))


def bootstrap_mean(values, reps=10000, seed=0):
  """(mean, 2.5 %, 97.5 %) of the mean by a percentile bootstrap."""
  import random
  rng = random.Random(seed)
  n = len(values)
  means = sorted(statistics.mean(rng.choices(values, k=n))
                 for _ in range(reps))
  return (statistics.mean(values), means[int(0.025 * reps)],
          means[int(0.975 * reps) - 1])


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
                      "and random search (each with early stopping); "
                      "screening_params: the default screening by the "
                      "parameter count, by the predictor, and random search")
  parser.add_argument("--minutes", type=float, default=30.0,
                      help="wall-clock minutes per (arm, seed) search")
  parser.add_argument("--seeds", default="1000,1001,1002",
                      help="report seeds (from 1000: no setting was "
                      "chosen on them)")
  parser.add_argument("--concurrent", action="store_true",
                      help="run the arms of a seed at the same time, one "
                      "TensorFlow thread each (and the retrainings three "
                      "at a time), so that other load on the machine "
                      "hits every arm alike")
  parser.add_argument("--out", default=str(ROOT / "runs" / "bench_halving"))
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--final_examples", type=int, default=45000,
                      help="training images of each best child's "
                      "retraining (2 epochs, augmented; the demo's: 45000)")
  parser.add_argument("--noise_seeds", type=int, default=3,
                      help="extra trainings of each arm's best "
                      "architecture at the search budget (0: none)")
  parser.add_argument("--retrain", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.retrain:
    retrain_one(args.retrain, args.final_examples, args.data_dir)
    return
  seeds = [int(s) for s in args.seeds.split(",")]
  out = pathlib.Path(args.out)

  from graph_nas import report
  from graph_nas.search import evaluators
  from graph_nas.search.store import TrialStore

  arms = STUDIES[args.study]
  if args.study != "halving":
    out = out.parent / f"bench_{args.study}"
  runs = {arm: [] for arm in arms}
  for seed in seeds:  # interleaved: load from other work hits every arm
    done = run_seed(seed, args.minutes, out, args.data_dir, arms,
                    args.concurrent)
    for arm in arms:
      folder, seconds, cpu = done[arm]
      with TrialStore(str(folder / "trials.sqlite"), read_only=True) as store:
        trials = store.trials()
        screened = len(store.screened(chosen=False))
        timing = store.get_meta("last_run_timing") or {}
      t0 = min(t["started"] for t in trials)
      runs[arm].append({"seed": seed, "folder": str(folder),
                        "seconds": seconds, "cpu_s": cpu, "trials": trials,
                        "t0": t0, "screened": screened,
                        "search_s": timing.get("wall_s")})

  def best_of(trials):
    return max((t for t in trials if _full(t) and t["cached_from"] is None),
               key=lambda t: t["reward"])

  # Each (arm, seed)'s best child retrained like the demo's, on the test
  # split: the paired test differences.
  tests = retrain(
      [((arm, r["seed"]), best_of(r["trials"])["config"],
        out / "retrain" / f"{arm.replace('+', '_')}_s{r['seed']}")
       for arm, rr in runs.items() for r in rr],
      args.final_examples, args.data_dir, args.concurrent)

  search_budget = demo_budget(args.data_dir)
  summary = {}
  for arm, arm_runs in runs.items():
    bests, seen, full = [], [], []
    for r in arm_runs:
      fresh = [t for t in r["trials"] if t["status"] == "ok" and
               t["cached_from"] is None]
      bests.append(best_of(r["trials"])["reward"])
      seen.append(len(fresh))
      full.append(sum(1 for t in fresh if _full(t)))
    best = best_of([t for r in arm_runs for t in r["trials"]])
    noise = []
    if args.noise_seeds:
      print(f"[{time.strftime('%H:%M:%S')}] {arm}: its best architecture "
            f"again with {args.noise_seeds} seeds", flush=True)
      trainer = evaluators.ChildEvaluator(search_budget)
      for k in range(args.noise_seeds):
        res = trainer.evaluate(best["config"], -1, 10_000 + k)
        noise.append(res.reward)
    test_per_seed = [tests[(arm, r["seed"])] for r in arm_runs]
    summary[arm] = {
        "best_val_per_seed": bests,
        "best_val_mean": statistics.mean(bests),
        "best_val_min": min(bests), "best_val_max": max(bests),
        "architectures_per_seed": seen, "full_budget_per_seed": full,
        "screened_out_per_seed": [r["screened"] for r in arm_runs],
        "search_minutes_per_seed": [round((r["search_s"] or 0) / 60, 2)
                                    for r in arm_runs],
        "cpu_minutes_per_seed": [round((r["cpu_s"] or 0) / 60, 2)
                                 for r in arm_runs],
        "best_config": best["config"], "best_val": best["reward"],
        "best_again_other_seeds": noise,
        "test_per_seed": test_per_seed,
        "test_mean": statistics.mean(test_per_seed),
    }
  noise_all = [v for s in summary.values()
               for v in s["best_again_other_seeds"]]
  one_score_sd = (statistics.mean(
      statistics.stdev(s["best_again_other_seeds"])
      for s in summary.values()) if args.noise_seeds >= 2 else None)

  names = list(arms)
  pairs = [(a, names[-1]) for a in names[:-1]] + [(names[0], names[1])]
  paired = {}
  for a, b in pairs:
    for key in ("best_val_per_seed", "test_per_seed"):
      d = [x - y for x, y in zip(summary[a][key], summary[b][key])]
      paired[f"{a} - {b}: {key}"] = {"diffs": d,
                                     "mean_ci95": bootstrap_mean(d)}

  RESULTS.mkdir(exist_ok=True)
  (RESULTS / f"cifar_cpu_search_{args.study}.json").write_text(json.dumps(
      {"minutes": args.minutes, "seeds": seeds, "child_budget": CHILD,
       "concurrent": args.concurrent,
       "final_examples": args.final_examples, "arms": summary,
       "paired": paired,
       "one_score_sd": one_score_sd, "noise_values": noise_all,
       "curves": {arm: [best_so_far(r["trials"], r["t0"]) for r in rr]
                  for arm, rr in runs.items()}}, indent=1))
  how = ("the arms of a seed ran at the same time, one TensorFlow thread "
         "each (sharing the 2 cores)" if args.concurrent else
         "one run at a time")
  lines = [f"Each arm: {args.minutes:g} minutes of search per seed "
           f"(seeds {args.seeds}; {how}), the demo's child budget.", "",
           "| arm | best full-budget val. accuracy per seed | mean "
           "(min-max) | architectures trained per seed | trained to the "
           "full budget | screened out | CPU minutes per run | retrained "
           "best child's test accuracy per seed (mean) |",
           "|---|---|---|---|---|---|---|---|"]
  for arm, s in summary.items():
    per_seed = ", ".join(f"{v:.4f}" for v in s["best_val_per_seed"])
    lines.append(
        f"| {arm} | {per_seed} | {s['best_val_mean']:.4f} "
        f"({s['best_val_min']:.4f}-{s['best_val_max']:.4f}) | "
        f"{', '.join(map(str, s['architectures_per_seed']))} | "
        f"{', '.join(map(str, s['full_budget_per_seed']))} | "
        f"{', '.join(map(str, s['screened_out_per_seed']))} | "
        f"{', '.join(f'{v:.1f}' for v in s['cpu_minutes_per_seed'])} | "
        f"{', '.join('-' if v is None else f'{v:.4f}' for v in s['test_per_seed'])}"
        f" ({s['test_mean']:.4f}) |")
  lines += ["", "Paired by seed (same seed, other arm); mean difference "
            "with a 95 % percentile-bootstrap interval over the seeds:", ""]
  for name, p in paired.items():
    m, lo, hi = p["mean_ci95"]
    lines.append(f"- {name}: {', '.join(f'{x:+.4f}' for x in p['diffs'])}"
                 f"; mean {m:+.4f} [{lo:+.4f}, {hi:+.4f}]")
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
