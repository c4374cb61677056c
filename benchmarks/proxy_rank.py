"""Do cheap scores rank architectures? Zero-cost proxies against training.

  python -m benchmarks.proxy_rank            # ~30 min on 2 cores
  python -m benchmarks.proxy_rank --no_train # the report from what is stored

For architectures of protos/cifar_cpu.textproto (uniform random walks: the
10 of benchmarks/proxy_check.py, whose trainings at this budget are
reused, then --archs more, the walk of architecture i drawn with seed
--walk_seed + i), the validation accuracy after the README demo's child
budget (5,120 images x 2 epochs, batch 32, SGD lr 0.1, no augmentation,
2,000 held-out images; launch/cifar_cpu_demo.sh) against what each cheap
score says before training:

- the zero-cost proxies of graph_nas.child.proxies, computed as a
  screening search computes them (graph_nas.search.evaluators
  ChildEvaluator.cheap_scores: one seeded batch of the training data, the
  untrained child with a fixed seed): synflow, naswot, params, flops;
- the learned predictor (graph_nas.search.predictor: the random forest
  over walk features), each architecture predicted by a forest fit on the
  others (leave-one-out), its mean and its screening score (upper
  confidence);
- the score at the first early-stopping rung of the demo (1/4 of the
  budget, same recipe and learning-rate schedule: the start of the full
  training, reported by the trainer at the rung).

Spearman's rho and Kendall's tau (scipy.stats) with 95 % bootstrap
intervals (architectures resampled, 2,000 draws), and each scorer's
difference to the parameter count on the same draws. Writes
benchmarks/results/proxy_rank/proxy_rank.{md,json,png}. Trainings are
appended to the json as they finish: a rerun resumes.
"""

import argparse
import json
import math
import os
import pathlib
import sys
import time

from benchmarks import options

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# 10 trainings at the same budget (python -m benchmarks.proxy_check).
STORED = RESULTS / "proxy_check" / "proxy_check.json"
STORED_WALK_SEED = 7  # benchmarks/proxy_check.py's walks
RUNG = 0.25  # the demo's first rung (--rungs=1/4,1/2)
PROXIES = ("synflow", "naswot", "params", "flops")


def demo_settings(data_dir):
  """The README demo's child budget (launch/cifar_cpu_demo.sh)."""
  from graph_nas.child.settings import TrainSettings
  return TrainSettings(data_dir=data_dir, train_examples=5120, epochs=2,
                       batch_size=32, learning_rate=0.1, augment=False,
                       eval_examples=2000, progress_every_s=0)


def architectures(sp, n, walk_seed, fresh_only=False):
  """[{id, walk, config, seed, stored}]: proxy_check's 10 (not with
  fresh_only), then n new ones (walk seeds from walk_seed up; a repeated
  architecture, one of proxy_check's or a walk cut by max_steps
  skipped)."""
  import numpy as np
  from graph_nas.search.store import config_key
  stored = json.loads(STORED.read_text())
  rng = np.random.default_rng(STORED_WALK_SEED)
  out, seen = [], set()
  for i, config in enumerate(stored["configs"]):
    walk = sp.sample_random(rng).actions
    if sp.decode(walk) != config:
      sys.exit(f"{STORED}: architecture {i} is not the walk of seed "
               f"{STORED_WALK_SEED} (regenerate it)")
    if not fresh_only:
      out.append({"id": f"proxy_check/{i}", "walk": list(walk),
                  "config": config, "seed": 100 + i,
                  "stored": stored["demo"][i]})
    seen.add(config_key(config))
  i, new = -1, 0
  while new < n:
    i += 1
    walk = sp.sample_random(np.random.default_rng(walk_seed + i))
    if walk.truncated:
      continue
    config = sp.decode(walk.actions)
    if config_key(config) in seen:
      continue
    seen.add(config_key(config))
    new += 1
    out.append({"id": f"walk{walk_seed + i}", "walk": list(walk.actions),
                "config": config, "seed": walk_seed + i, "stored": None})
  return out


def load(path):
  return json.loads(path.read_text()) if path.exists() else {}


def save(path, data):
  tmp = path.with_suffix(".tmp")
  tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
  os.replace(tmp, path)


def train(archs, settings, path):
  """Trains what is missing: the full budget (its score at the rung
  reported on the way), or the rung only where the full score is stored."""
  from graph_nas import child
  from graph_nas.child import trainer as child_trainer
  from graph_nas.search import halving
  data = load(path)
  done = data.setdefault("trainings", {})
  trainer = None
  for a in archs:
    if a["id"] in done:
      continue
    trainer = trainer or child_trainer.ChildTrainer(
        settings, child.build_child, flops_fn=child.count_flops,
        params_fn=child.count_params)
    full = a["stored"] is None
    trial = halving.Trial(a["id"], (RUNG,), lambda report, go=full: go,
                          seed=a["seed"])
    t0 = time.perf_counter()
    result = trainer.train(a["config"], a["seed"], trial=trial,
                           label=a["id"])
    if not result.ok:
      print(f"{a['id']}: failed: {result.reason}", flush=True)
      continue
    m = result.metrics
    row = {"rung": trial.scores[0] if trial.scores else None,
           "val_accuracy": (m["val_accuracy"] if full else a["stored"]),
           "trained": "full" if full else "rung (full score stored)",
           "params": m["params"], "flops": m["flops"],
           "seconds": time.perf_counter() - t0}
    done[a["id"]] = row
    data["budget"] = settings.budget_identity()
    save(path, data)
    print(f"{a['id']}: rung {row['rung']:.4f} full {row['val_accuracy']:.4f}"
          f" ({row['seconds']:.0f}s)", flush=True)
  return done


# ------------------------------------------------------------------ report
SCORERS = ("synflow", "naswot", "params", "flops", "predictor",
           "predictor_ucb", "rung", "rung_params")
LABELS = {
    "synflow": "synflow (log)", "naswot": "NASWOT log det K",
    "params": "parameters", "flops": "multiply-adds",
    "predictor": "predictor (leave-one-out mean)",
    "predictor_ucb": "predictor (leave-one-out, its screening score)",
    "rung": "score at the 1/4 rung",
    "rung_params": "1/4 rung and parameters (mean of their ranks)",
}


def proxy_scores(archs, settings):
  """{id: {name: score}} and {name: [seconds per architecture]}: the
  evaluator's cheap scores, one architecture at a time (as a screening
  computes them), plus the build alone."""
  from graph_nas.search import evaluators
  ev = evaluators.ChildEvaluator(settings)
  ev.cheap_scores([archs[0]["config"]], "naswot")  # reads the batch once
  ev.cheap_scores([archs[0]["config"]], "synflow")  # warm-up
  scores = {a["id"]: {} for a in archs}
  seconds = {name: [] for name in PROXIES + ("build",)}
  cpu = {name: [] for name in PROXIES + ("build",)}
  for a in archs:
    for name in PROXIES + ("build",):
      t0, c0 = time.perf_counter(), time.process_time()
      if name == "build":
        ev.trainer.build(a["config"], ev.proxy_seed)
      else:
        scores[a["id"]][name] = ev.cheap_scores([a["config"]], name)[0]
      seconds[name].append(time.perf_counter() - t0)
      cpu[name].append(time.process_time() - c0)
  return scores, seconds, cpu


def loo_predictor(sp, archs, y):
  """Leave-one-out predictions of the screening's random forest
  (graph_nas.search.predictor.PredictorScorer, its defaults): (mean,
  mean + kappa * spread), each fit on the other architectures."""
  import numpy as np
  from graph_nas.search import predictor, screening
  walks = [tuple(a["walk"]) for a in archs]
  configs = [a["config"] for a in archs]
  mean, ucb, seconds = [], [], []
  for i in range(len(archs)):
    keep = [j for j in range(len(archs)) if j != i]
    scorer = predictor.PredictorScorer(sp, seed=0, min_trials=2)
    history = screening.History([walks[j] for j in keep],
                                [configs[j] for j in keep],
                                [y[j] for j in keep])
    t0 = time.perf_counter()
    scorer.fit(history)
    m, sd = scorer.predict([walks[i]])
    seconds.append(time.perf_counter() - t0)
    mean.append(float(m[0]))
    ucb.append(float(m[0] + scorer.kappa * sd[0]))
  return mean, ucb, float(np.median(seconds))


def correlations(columns, y, draws=2000, seed=0):
  """{name: {spearman, kendall, their 95 % bootstrap intervals, and the
  difference of Spearman to the parameter count on the same draws}}."""
  import numpy as np
  from scipy import stats
  y = np.asarray(y, float)
  n = len(y)
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, n, size=(draws, n))

  def both(x, rows):
    rho = stats.spearmanr(x[rows], y[rows]).statistic
    tau = stats.kendalltau(x[rows], y[rows]).statistic
    return rho, tau

  boot = {}
  out = {}
  for name, x in columns.items():
    x = np.asarray(x, float)
    rho, tau = both(x, np.arange(n))
    b = np.array([both(x, rows) for rows in idx])
    boot[name] = b
    out[name] = {"spearman": float(rho), "kendall": float(tau),
                 "spearman_95": _interval(b[:, 0]),
                 "kendall_95": _interval(b[:, 1])}
  for name in columns:
    out[name]["spearman_with_params"] = float(stats.spearmanr(
        np.asarray(columns[name], float),
        np.asarray(columns["params"], float)).statistic)
    d = boot[name][:, 0] - boot["params"][:, 0]
    out[name]["spearman_minus_params_95"] = _interval(d)
    out[name]["spearman_minus_params"] = (out[name]["spearman"] -
                                          out["params"]["spearman"])
  return out


def _interval(values):
  import numpy as np
  v = np.asarray(values, float)
  v = v[np.isfinite(v)]
  return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]


def report(sp, archs, settings, path, args):
  """Scores, correlations, the md / json / png files."""
  import numpy as np
  data = load(path)
  done = data.get("trainings", {})
  archs = [a for a in archs if a["id"] in done]
  if len(archs) < 5:
    sys.exit(f"{path}: {len(archs)} trained architectures; train first")
  y = [done[a["id"]]["val_accuracy"] for a in archs]
  scores, seconds, cpu = proxy_scores(archs, settings)
  mean, ucb, predictor_s = loo_predictor(sp, archs, y)
  columns = {name: [scores[a["id"]][name] for a in archs]
             for name in PROXIES}
  columns["predictor"], columns["predictor_ucb"] = mean, ucb
  columns["rung"] = [done[a["id"]]["rung"] for a in archs]
  from scipy import stats
  columns["rung_params"] = ((stats.rankdata(columns["rung"]) +
                             stats.rankdata(columns["params"])) / 2).tolist()
  corr = correlations(columns, y)
  train_s = [done[a["id"]]["seconds"] for a in archs
             if done[a["id"]]["trained"] == "full"]
  cost = {name: float(np.median(seconds[name])) for name in seconds}
  cost_cpu = {name: float(np.median(cpu[name])) for name in cpu}
  cost["predictor"] = cost["predictor_ucb"] = predictor_s
  cost["rung"] = RUNG * float(np.median(train_s)) if train_s else None
  cost["rung_params"] = cost["rung"]
  cost["training"] = float(np.median(train_s)) if train_s else None
  data.update({
      "command": "python -m benchmarks.proxy_rank " + " ".join(
          sys.argv[1:]),
      "architectures": [{k: a[k] for k in ("id", "walk", "config", "seed")}
                        for a in archs],
      "val_accuracy": y, "scores": columns, "correlations": corr,
      "seconds_per_architecture": cost,
      "cpu_seconds_per_architecture": cost_cpu,
      "load_average": os.getloadavg()})
  save(path, data)
  base = pathlib.Path(args.out)
  base.with_suffix(".md").write_text(markdown(archs, y, columns, corr, cost,
                                              cost_cpu, args))
  plot(columns, y, corr, [a["stored"] is not None for a in archs],
       base.with_suffix(".png"))
  print(base.with_suffix(".md").read_text())


def _fmt_ci(value, ci):
  return f"{value:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"


def _seconds(s):
  if s is None:
    return "-"
  if s < 1e-3:
    return f"{s * 1e6:.0f} us"
  if s < 1:
    return f"{s * 1e3:.0f} ms"
  return f"{s:.2f} s"


def _rel(path):
  """A results path as the repository names it."""
  try:
    return str(pathlib.Path(path).resolve().relative_to(ROOT))
  except ValueError:
    return str(path)


def command(args):
  """The command that trains and reports what this run reports."""
  parts = ["python -m benchmarks.proxy_rank"]
  if args.archs != 40:
    parts.append(f"--archs={args.archs}")
  if args.walk_seed != 1000:
    parts.append(f"--walk_seed={args.walk_seed}")
  if args.fresh_only:
    parts.append("--fresh_only")
  if _rel(args.out) != _rel(RESULTS / "proxy_rank" / "proxy_rank"):
    parts.append(f"--out={_rel(args.out)}")
  return " ".join(parts)


def markdown(archs, y, columns, corr, cost, cost_cpu, args):
  """The results page."""
  n = len(archs)
  reused = sum(a["stored"] is not None for a in archs)
  lines = [
      "# Do cheap scores rank architectures? (issue 29, item 3)",
      "",
      f"{n} architectures of `protos/cifar_cpu.textproto` (uniform random "
      + (f"walks: {reused} of `benchmarks/proxy_check.py`, walk seed 7, "
         f"whose full trainings at this budget are reused; {n - reused} "
         if reused else f"walks, none of them in `proxy_rank.md`'s run: "
         f"{n} ") +
      f"drawn with walk seeds from {args.walk_seed} up), each trained to "
      "the README demo's full child budget until 2026-12-03 (since then "
      "4,096 images; here 5,120 CIFAR-10 training images x 2 "
      "epochs, batch 32, SGD lr 0.1, no augmentation; validation accuracy "
      "on 2,000 held-out training images). Each cheap score against that "
      "accuracy: Spearman's rho and Kendall's tau (scipy.stats) with 95 % "
      "bootstrap intervals (architectures resampled, 2,000 draws), and "
      "the difference of rho to the parameter count's on the same draws.",
      "",
      "    " + command(args),
      "",
      "| scorer | Spearman rho [95 %] | Kendall tau [95 %] | rho - rho(params) [95 %] | rho with params | cost per architecture |",
      "|---|---|---|---|---|---|",
  ]
  for name in SCORERS:
    c = corr[name]
    diff = ("(reference)" if name == "params" else
            _fmt_ci(c["spearman_minus_params"],
                    c["spearman_minus_params_95"]))
    lines.append(f"| {LABELS[name]} | "
                 f"{_fmt_ci(c['spearman'], c['spearman_95'])} | "
                 f"{_fmt_ci(c['kendall'], c['kendall_95'])} | {diff} | "
                 f"{c['spearman_with_params']:+.2f} | "
                 f"{_seconds(cost.get(name))} |")
  lines += ["", "## What it says", ""]
  lines += verdicts(corr)
  lines += ["", noise_ceiling(y)]
  lines += [
      "",
      "## How each score is computed",
      "",
      "- **synflow**, **naswot** (`graph_nas.child.proxies`, as a "
      "screening search computes them: "
      "`graph_nas.search.evaluators.ChildEvaluator.cheap_scores`): the "
      "untrained child built with Keras' seed 0. synflow: |w| for every "
      "weight, BatchNormalization bypassed (the identity), an all-ones "
      "image after the model's normalisation, log of sum |w * dR/dw| over "
      "the conv, depthwise and dense kernels, R the sum of the logits. "
      "NASWOT: log |det K| of the binary codes of the ReLU / swish layers' "
      "inputs on one batch of 64 training images (seeded), BN on the "
      "batch's statistics.",
      "- **params**, **flops**: the child's weights and multiply-adds, "
      "from the config (`graph_nas.child.estimate_cost`, equal to the "
      "built model's counts).",
      "- **predictor**: the screening's random forest "
      "(`graph_nas.search.predictor.PredictorScorer`, its defaults: 48 "
      "trees over the walk's decisions), leave-one-out: each "
      "architecture predicted by a forest fit on the other "
      f"{n - 1}. Its mean, and its screening score (mean + kappa x the "
      "trees' spread).",
      "- **rung**: the validation accuracy (same 2,000 images) after 1/4 "
      "of the budget, with the full budget's learning-rate schedule: the "
      "score the demo's early stopping decides on at its first rung, "
      "reported by the trainer on the way to the full training (for the "
      f"{reused} reused architectures, a training stopped at the rung, "
      "with the stored training's seed). **1/4 rung and parameters**: "
      "the mean of the two ranks, " + (
          "a combination chosen on the first run's architectures "
          "(`proxy_rank.md`, where it was looked at after seeing that the "
          "rung's score is nearly independent of the size) and tested "
          "here on architectures that run never saw." if args.fresh_only
          else "a combination looked at after seeing that the rung's "
          "score is nearly independent of the size (not chosen "
          "beforehand: read it as a lead, not a result; "
          "`proxy_rank_fresh.md` tests it on fresh architectures)."),
      "",
      "Costs: medians per architecture on the 2-core machine, shared with "
      "other jobs while this ran (load average "
      f"{os.getloadavg()[0]:.1f} at the end): they are what this run saw, "
      "not a clean measurement; the correlations do not depend on them. "
      "synflow and naswot include the child's build "
      f"({_seconds(cost['build'])} alone); their processor time (all "
      "threads of the process, less sensitive to the other jobs): "
      f"synflow {_seconds(cost_cpu['synflow'])}, naswot "
      f"{_seconds(cost_cpu['naswot'])}, the build alone "
      f"{_seconds(cost_cpu['build'])}. The predictor's is a fit on "
      f"{n - 1} architectures plus one prediction; the rung's is a "
      "quarter of the median full training "
      f"({_seconds(cost.get('training'))}).",
      "",
      f"Scatter plots: `{_rel(args.out)}.png`; every score and accuracy: "
      f"`{_rel(args.out)}.json`.",
      "",
  ]
  return "\n".join(lines)


def verdicts(corr):
  """One line per scorer: better than counting parameters or not."""
  out = []
  p = corr["params"]
  better = [LABELS[n] for n in SCORERS if n != "params" and
            corr[n]["spearman_minus_params_95"][0] > 0]
  out.append("**In short: " + (
      "better than counting parameters: " + ", ".join(better) if better
      else "no cheap score here ranks the architectures better than "
      "counting their parameters") + ".**")
  out.append("")
  out.append(f"- Counting parameters ranks the architectures with rho "
             f"{p['spearman']:+.2f} {_ci(p['spearman_95'])}.")
  for name in SCORERS:
    if name == "params":
      continue
    c = corr[name]
    lo, hi = c["spearman_minus_params_95"]
    if lo > 0:
      word = "better than counting parameters"
    elif hi < 0:
      word = "worse than counting parameters"
    else:
      word = "**no better than counting parameters** (the interval of " \
             "the difference holds 0)"
    out.append(f"- {LABELS[name]}: rho {c['spearman']:+.2f} "
               f"{_ci(c['spearman_95'])}, {word}: difference "
               f"{c['spearman_minus_params']:+.2f} {_ci([lo, hi])}.")
  return out


def noise_ceiling(y):
  """How high a perfect scorer's rho could be, given one training's noise
  (the same architecture retrained with other seeds, same budget:
  benchmarks/results/cifar_cpu_search/cifar_cpu_search_halving.json)."""
  import numpy as np
  halving = RESULTS / "cifar_cpu_search" / "cifar_cpu_search_halving.json"
  sd_y = float(np.std(y, ddof=1))
  if not halving.exists():
    return f"The accuracies spread with sd {sd_y:.3f}."
  noise = json.loads(halving.read_text())["one_score_sd"]
  ceiling = math.sqrt(max(0.0, 1 - noise ** 2 / sd_y ** 2))
  return (f"How much of this is the target's noise: the accuracies spread "
          f"with sd {sd_y:.3f} ({min(y):.3f} to {max(y):.3f}); one "
          f"training's seed noise at this budget is sd {noise:.3f} (the "
          "same architecture retrained with other seeds, "
          "`cifar_cpu_search_halving.json`), so a scorer that knew each "
          f"architecture's expected accuracy would correlate about "
          f"{ceiling:.2f} with one training of it. The scores above stay "
          "far below that: they are weak rankers here, not victims of a "
          "noisy target. \"rho with params\" is each score's Spearman "
          "correlation with the parameter count: how much of a score is "
          "the child's size.")


def _ci(ci):
  return f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def plot(columns, y, corr, reused, out):
  """One panel per scorer: its score against the validation accuracy
  (reused: which architectures are proxy_check.py's)."""
  import numpy as np
  from matplotlib import ticker
  reused = np.asarray(reused, bool)
  from graph_nas.report import plots
  plt = plots._pyplot()  # pylint: disable=protected-access
  names = [n for n in SCORERS if n not in ("predictor_ucb", "rung_params")]
  fig, axes = plt.subplots(2, 3, figsize=(12, 7.2))
  y = np.asarray(y, float)
  for ax, name in zip(axes.flat, names):
    x = np.asarray(columns[name], float)
    finite = np.isfinite(x)
    for group, color, label in ((reused, "tab:orange",
                                 "proxy_check.py's (reused)"),
                                (~reused, "tab:blue", "new walks")):
      keep = finite & group
      ax.scatter(x[keep], y[keep], s=18, alpha=0.75, color=color,
                 label=label)
    if name in ("params", "flops"):
      ax.set_xscale("log")
      ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
      ax.xaxis.set_major_formatter(ticker.EngFormatter())
      ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    c = corr[name]
    ax.set_title(f"{LABELS[name]}\nSpearman {c['spearman']:+.2f} "
                 f"{_ci(c['spearman_95'])}", fontsize=10)
    ax.set_xlabel(LABELS[name], fontsize=9)
    ax.grid(alpha=0.3)
    if (~finite).any():
      ax.text(0.02, 0.02, f"{int((~finite).sum())} not finite (not shown)",
              transform=ax.transAxes, fontsize=8)
  axes.flat[0].legend(fontsize=8, loc="lower right")
  for ax in axes[:, 0]:
    ax.set_ylabel("validation accuracy (full demo budget)", fontsize=9)
  for ax in list(axes.flat)[len(names):]:
    ax.axis("off")
  fig.suptitle(f"Cheap scores vs trained accuracy: {len(y)} architectures "
               "of cifar_cpu (README demo budget)", fontsize=11)
  fig.tight_layout()
  fig.savefig(out, dpi=110)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--archs", type=options.at_least(0), default=40,
                      help="new architectures besides proxy_check's 10")
  parser.add_argument("--walk_seed", type=int, default=1000,
                      help="the walk of new architecture i is drawn with "
                      "seed walk_seed + i")
  parser.add_argument("--data_dir", default=None,
                      help="tfds data folder (default: as graph_nas.child.data "
                      "resolves it)")
  parser.add_argument("--fresh_only", action="store_true",
                      help="leave out proxy_check's 10 (a check on "
                      "architectures no earlier run saw)")
  parser.add_argument("--no_train", action="store_true",
                      help="report on the trainings stored so far")
  parser.add_argument("--only_train", action="store_true",
                      help="train what is missing, write no report")
  parser.add_argument("--out", default=str(RESULTS / "proxy_rank" /
                                           "proxy_rank"),
                      help="path without extension of the results")
  args = parser.parse_args()

  from graph_nas import space
  sp = space.load(str(ROOT / "protos" / "cifar_cpu.textproto"))
  archs = architectures(sp, args.archs, args.walk_seed, args.fresh_only)
  settings = demo_settings(args.data_dir)
  path = pathlib.Path(args.out + ".json")
  path.parent.mkdir(parents=True, exist_ok=True)
  if not args.no_train:
    train(archs, settings, path)
  if args.only_train:
    return
  report(sp, archs, settings, path, args)


if __name__ == "__main__":
  main()
