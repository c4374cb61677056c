"""How well must a scorer rank for screening to halve random's regret?

  python -m benchmarks.screen_headroom            # ~20 min on 2 cores

Issue 29's moonshot asks the default searcher for half of random search's
regret at 200 trials on every NAS-Bench-Graph task. This runs the default
searcher (search_quality's `default`: evolution screening K = 16
candidates per trial, explore 0.25, after 10 trials) with its predictor
replaced by a scorer of known quality: the task's own reward plus
Gaussian noise of sd `sigma` x the reward's sd over the space (each
architecture's noise drawn once, seeded by its config), sigma 0 being an
oracle that ranks every candidate pool perfectly. Beside them, on the
same seeds: random search, the default (its predictor on the walk's
decisions) and, where the task has domain features, the default's
predictor on them (`default_predictor_paths`).

For each scorer: Spearman's rho with the reward over a sample of distinct
random architectures (each forest fit on `--fit` of them and scored on
the rest, mean of 5 splits, for the real predictors), and the mean regret
(optimum - best) at 100 and 200 trials with its ratio to random search's.
A noisy truth is not a predictor (its errors are independent, a model's
are not): read the rows as the ranking quality at which the framework
around the scorer meets the target, not as a forecast for any model.

Tuning seeds only (0-99; --seeds from --first_seed): an analysis to
choose what to work on, not a result. Writes
benchmarks/results/screening_suite/screen_headroom.{md,json}.
"""

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import zlib

import numpy as np

from benchmarks import options
from benchmarks.search_quality import METHODS
from benchmarks.suite import driver
from benchmarks.suite import tasks as tasks_lib
from graph_nas.durations import format_duration
from graph_nas.search import screening
from graph_nas.search.store import config_key

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "screening_suite", "screen_headroom")
NBG_TASKS = tuple(f"nbg_{d}_{e}" for d in ("cora", "citeseer", "pubmed")
                  for e in ("graph", "linear"))
SIGMAS = (0.0, 0.25, 0.5, 1.0, 2.0)
BUDGETS = (100, 200)
TUNING_SEEDS = 100  # seeds 0-99 choose; 1,000 up report (the brief)
MODEL_METHODS = ("default", "default_predictor_paths")


class NoisyTruth(screening.Scorer):
  """The task's reward plus N(0, (sigma * scale)^2) noise, the same draw
  for an architecture every time (seeded by its config); ready after
  `min_trials` trials, as the predictor it stands in for."""

  name = "noisy_truth"

  def __init__(self, reward, sigma: float, scale: float,
               min_trials: int = 10):
    self.reward, self.sigma, self.scale = reward, float(sigma), float(scale)
    self.min_trials = int(min_trials)

  def ready(self, history):
    return len(history) >= self.min_trials

  def noise(self, config) -> float:
    if not self.sigma:
      return 0.0
    seed = zlib.crc32(config_key(config).encode())
    return self.sigma * self.scale * float(
        np.random.default_rng(seed).standard_normal())

  def score(self, walks, configs, history):
    return np.asarray([float(self.reward(c)) + self.noise(c)
                       for c in configs], np.float64)


def sample(task, n: int, seed: int = 0):
  """(walks, configs, rewards) of up to n distinct architectures drawn by
  uniform random walks."""
  from graph_nas.search import algorithms  # pylint: disable=import-outside-toplevel
  algo = algorithms.make_algorithm("random", task.space, seed=seed)
  walks, configs, keys = [], [], set()
  for walk in algo.propose(3 * n):
    try:
      config = task.space.decode(walk)
    except Exception:  # pylint: disable=broad-except
      continue
    key = config_key(config)
    if key not in keys:
      keys.add(key)
      walks.append(tuple(walk))
      configs.append(config)
    if len(walks) >= n:
      break
  return walks, configs, np.asarray([task.reward(c) for c in configs])


def spearman(a, b) -> float:
  from scipy.stats import spearmanr  # pylint: disable=import-outside-toplevel
  return float(spearmanr(a, b)[0])


def model_rho(task, label, walks, configs, y, fit: int) -> float:
  """Spearman of the method's predictor fit on `fit` sampled architectures
  with the rest, mean over 5 random splits."""
  screen = METHODS[label].make_screen(task.space, 0, task.features)
  fit = min(fit, len(y) // 2)  # a small space: half fit, half scored
  out = []
  for split in range(5):
    idx = np.random.default_rng(split).permutation(len(y))
    tr, te = idx[:fit], idx[fit:]
    scorer = screen.scorer
    hist = screening.History([walks[i] for i in tr], [configs[i] for i in tr],
                             y[tr])
    scorer.fit(hist)
    mean, _ = scorer.predict([walks[i] for i in te], [configs[i] for i in te])
    out.append(spearman(mean, y[te]))
  return float(np.mean(out))


def _job(args):
  task_name, row, seed, budget, scale = args
  task = tasks_lib.get(task_name)
  if row.startswith("sigma="):
    scorer = NoisyTruth(task.reward, float(row[6:]), scale,
                        METHODS["default"].screen_min_trials)
    trace = driver.run(task, METHODS["default"], seed, budget, scorer=scorer)
  else:
    trace = driver.run(task, METHODS[row], seed, budget)
  r = np.asarray(trace.rewards, np.float64)
  return task_name, row, seed, [float(task.optimum - np.nanmax(r[:k]))
                                for k in BUDGETS]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tasks", default=",".join(NBG_TASKS),
                      help="comma-separated suite tasks")
  parser.add_argument("--seeds", type=options.at_least(2), default=20,
                      help="searches per scorer and task")
  parser.add_argument("--first_seed", type=options.at_least(0), default=0,
                      help="first seed (tuning seeds: 0-99)")
  parser.add_argument("--sigmas", default=",".join(f"{s:g}" for s in SIGMAS),
                      help="noise levels, in units of the reward's sd")
  parser.add_argument("--sample", type=options.at_least(200), default=5000,
                      help="random architectures for the Spearman column")
  parser.add_argument("--fit", type=options.at_least(10), default=150,
                      help="of them, those each real predictor is fit on")
  parser.add_argument("--workers", type=options.at_least(1), default=2,
                      help="processes running searches at once")
  parser.add_argument("--out", default=OUT,
                      help="path without extension of the results")
  args = parser.parse_args()
  if args.first_seed + args.seeds > TUNING_SEEDS:
    parser.error(f"--first_seed + --seeds must stay within the tuning "
                 f"seeds 0-{TUNING_SEEDS - 1}: this is an analysis, not a "
                 "report")
  try:
    sigmas = [float(s) for s in args.sigmas.split(",")]
  except ValueError:
    parser.error(f"--sigmas must be numbers, got {args.sigmas!r}")
  if any(not s >= 0 for s in sigmas):
    parser.error(f"--sigmas must be >= 0, got {args.sigmas!r}")
  names = [t for t in args.tasks.split(",") if t]
  unknown = [t for t in names if t not in tasks_lib.names()]
  if unknown:
    parser.error(f"unknown --tasks {', '.join(unknown)} (known: "
                 f"{', '.join(tasks_lib.names())})")

  t0 = time.time()
  seeds = range(args.first_seed, args.first_seed + args.seeds)
  info, jobs = {}, []
  for name in names:
    task = tasks_lib.get(name)
    walks, configs, y = sample(task, args.sample)
    scale = float(np.std(y))
    rows = {}
    for s in sigmas:
      scorer = NoisyTruth(task.reward, s, scale)
      rows[f"sigma={s:g}"] = spearman(y + [scorer.noise(c) for c in configs],
                                      y) if s else 1.0
    for label in MODEL_METHODS:
      if label == "default_predictor_paths" and task.features is None:
        continue
      rows[label] = model_rho(task, label, walks, configs, y, args.fit)
    info[name] = {"sample": len(y), "reward_sd": scale, "rho": rows}
    print(f"{name}: " + ", ".join(f"{k} rho {v:.2f}" for k, v in rows.items()),
          flush=True)
    for row in ["random"] + list(rows):
      jobs += [(name, row, seed, max(BUDGETS), scale) for seed in seeds]

  regrets = {}
  with mp.Pool(args.workers) as pool:
    for i, (name, row, seed, reg) in enumerate(
        pool.imap_unordered(_job, jobs), 1):
      regrets.setdefault(name, {}).setdefault(row, {})[seed] = reg
      if i % 20 == 0 or i == len(jobs):
        spent = time.time() - t0
        print(f"{i}/{len(jobs)} searches, {format_duration(spent)}, ETA "
              f"{format_duration(spent / i * (len(jobs) - i))}", flush=True)

  out = {"command": " ".join(["python -m benchmarks.screen_headroom"] +
                            sys.argv[1:]),
         "seeds": list(seeds), "budgets": list(BUDGETS), "tasks": info,
         "regrets": {n: {r: [v[s] for s in seeds] for r, v in rows.items()}
                     for n, rows in regrets.items()}}
  with open(args.out + ".json", "w") as f:
    json.dump(out, f, indent=1)
  with open(args.out + ".md", "w") as f:
    f.write(report(out, time.time() - t0))
  plot(out, args.out + ".png")
  print(f"wrote {args.out}.md and .png")


def plot(out, path: str) -> None:
  """Ratio to random's regret at 200 trials against rho, per task: the
  noisy truths as a line, the real predictors as markers."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  names = list(out["regrets"])
  cols = min(3, len(names))
  nrows = -(-len(names) // cols)
  fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 3.0 * nrows + 0.5),
                           sharey=True, squeeze=False)
  for ax in axes.flat[len(names):]:
    ax.axis("off")
  marks = {"default": ("o", "tab:red", "default (walk)"),
           "default_predictor_paths": ("s", "tab:green", "predictor on paths")}
  for ax, name in zip(axes.flat, names):
    rows, rho = out["regrets"][name], out["tasks"][name]["rho"]
    rand = np.mean(np.asarray(rows["random"])[:, -1])
    ratio = {r: np.mean(np.asarray(v)[:, -1]) / rand for r, v in rows.items()}
    noisy = sorted((rho[r], ratio[r]) for r in rows if r.startswith("sigma="))
    ax.plot(*zip(*noisy), "-", color="tab:blue", marker=".",
            label="reward + noise")
    for label, (m, c, text) in marks.items():
      if label in rho:
        ax.plot(rho[label], ratio[label], m, color=c, label=text)
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_title(name.replace("nbg_", ""), fontsize=9)
    ax.set_xlabel("Spearman rho with the reward")
    ax.set_xlim(0, 1.02)
  for row in axes:
    row[0].set_ylabel("regret@200 / random's")
  axes[0][0].legend(fontsize=7, loc="upper right")
  fig.suptitle("Screening: ranking quality against the moonshot\n(dotted: "
               "half of random's regret; tuning seeds)", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def ratio_interval(a, b, resamples: int = 2000, seed: int = 0):
  """95 % percentile interval of mean(a) / mean(b) over seeds resampled
  with replacement, paired (a, b: one regret per seed)."""
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, len(a), (resamples, len(a)))
  num, den = a[idx].mean(1), b[idx].mean(1)
  ratios = num[den > 0] / den[den > 0]
  return tuple(np.percentile(ratios, [2.5, 97.5]))


def report(out, seconds: float) -> str:
  seeds = out["seeds"]
  head = [
      "# How well must a scorer rank? (issue 29's moonshot)", "",
      f"Command: `{out['command']}`; tuning seeds {seeds[0]}-{seeds[-1]} "
      f"({len(seeds)} searches per row); wall time {format_duration(seconds)}.",
      "",
      "The default searcher (evolution screening 16 candidates per trial, "
      "explore 0.25, after 10 trials) with its predictor replaced by the "
      "task's reward plus noise of sd sigma x the reward's sd (sigma 0: an "
      "oracle), beside random search, the default (predictor on the walk) "
      "and the predictor on the task's domain features (paths). rho: "
      "Spearman with the reward over random architectures (for a real "
      "predictor: fit on 150 of them, scored on the rest, mean of 5 "
      "splits). Regret: optimum - best, mean over seeds; ratio: to random "
      "search's at 200 trials (moonshot: <= 0.5), with a paired bootstrap "
      "95 % interval over seeds. Noise is independent "
      "between architectures, a model's errors are not: the rows say at "
      "what ranking quality the framework around the scorer meets the "
      "target, not what any model would do.", ""]
  lines, summary = [], []
  for name, rows in out["regrets"].items():
    rho = out["tasks"][name]["rho"]
    rand = np.mean(rows["random"], axis=0)
    lines += [f"## {name}", "", "| scorer | rho | regret@100 | regret@200 |"
              " ratio@200 [95 %] |", "|---|---|---|---|---|"]
    met = []
    for row, regs in rows.items():
      mean = np.mean(regs, axis=0)
      ratio = mean[-1] / rand[-1] if rand[-1] > 0 else float("nan")
      r = rho.get(row)
      low, high = ratio_interval(np.asarray(regs)[:, -1],
                                 np.asarray(rows["random"])[:, -1])
      lines.append(f"| {row} | {'' if r is None else f'{r:.2f}'} | "
                   f"{mean[0]:.4f} | {mean[1]:.4f} | {ratio:.2f} "
                   f"[{low:.2f}, {high:.2f}] |")
      if row.startswith("sigma=") and ratio <= 0.5:
        met.append(r)
    lines.append("")
    need = (f"the noisiest truth whose mean ratio is <= 0.5 ranks with "
            f"rho {min(met):.2f}" if met else "no noisy truth here meets it")
    models = ", ".join(f"{k} {rho[k]:.2f}" for k in MODEL_METHODS if k in rho)
    summary.append(f"- {name}: {need}; the predictors: {models}.")
  summary.append(f"\nThe intervals are wide ({len(seeds)} seeds): read "
                 "these levels as rough.")
  return "\n".join(head + ["## In short", ""] + summary + [""] +
                   lines) + "\n"


if __name__ == "__main__":
  main()
