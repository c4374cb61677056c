"""Search quality: graph-nas' searchers against random search, regularized
evolution and Optuna's TPE, on seeds no setting was chosen on.

  pip install ".[bench]"      # Optuna and nas-bench-graph
  python -m benchmarks.search_quality --phase=report     # ~50 min, 2 cores
  python -m benchmarks.search_quality --phase=tune --methods=evo_p10_t5 ...

Tasks (benchmarks.suite.tasks): stack layers, select optimizer B = 2 and 4
(the shipped graph spaces and their linear forms) and NAS-Bench-Graph
cora, citeseer and pubmed in a linear and a graph encoding. Methods: see
METHODS; the graph-nas ones run with the declared defaults
(graph_nas.search.settings) unless their entry says otherwise.

Seeds: --phase=tune uses seeds 0 .. --seeds-1 (at most 100: every setting
is chosen there); --phase=report uses seeds 1000 .. 1000 + --seeds - 1,
that no choice saw. Every (task, method, seed) search runs once to the
largest budget; best-after-k is read off its trials. Results are appended
to results/search_quality/search_quality_<phase>.jsonl.gz as they finish:
a rerun skips what is there (resumable). Then the script writes
results/search_quality/search_quality_<phase>.md (tables with paired
bootstrap 95 % intervals over seeds, mean ranks) and
results/search_quality/search_quality_<phase>_*.png (mean best-so-far with
a 95 % band of the mean).

Screening (issue 29; results in results/screening_suite/, see
benchmarks/README.md): the deduplicated baselines (`random_dedup`,
`reg_evolution_dedup`, `tpe_dedup`: DEDUP_BASELINES) beside the published
ones, `default_predictor` (the default searcher screening with the learned
predictor, settings chosen on tuning seeds: PREDICTOR_CHOICE) and the
tuning grid `scr_k<K>_e<explore>_kap<kappa>`:

  S="--results_dir=benchmarks/results/screening_suite --tag=_screen
     --budget=200 --toy_budget=200"
  python -m benchmarks.search_quality --phase=tune --seeds=4 $S
      --methods=default,scr_k8_e0.25_kap0.5,scr_k4_e0.25_kap0.5,...
  python -m benchmarks.search_quality --phase=report --seeds=10 $S
      --references=default,default_predictor --methods=random,
      random_dedup,reg_evolution,reg_evolution_dedup,tpe,tpe_dedup,
      default,default_predictor

(one line each; benchmarks/README.md gives the exact commands run).
"""

import argparse
import gzip
import json
import multiprocessing as mp
import os
import sys
import time

import numpy as np

from benchmarks import options
from benchmarks.suite import driver, stats
from benchmarks.suite import tasks as tasks_lib
from graph_nas.durations import format_duration

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results", "search_quality")

M = driver.Method
# The baselines are fixed as published (not graph-nas' defaults): uniform
# random search, regularized evolution with population 20 and tournament 5
# (Real et al.; as in NAS-Bench-101/-Graph), Optuna's multivariate TPE.
BASELINES = {
    "random": M("random", "random"),
    "reg_evolution": M("reg_evolution", "evolution", {
        "population_size": 20, "tournament_size": 5, "no_repeats": False,
        "local_step_prob": 0.0}),
    "tpe": M("tpe", "tpe"),
}
# The same baselines refusing repeats (issue 29): random search without
# replacement (benchmarks.suite.dedup), textbook regularized evolution that
# redraws a repeated child (the loop's no_repeats: up to 20 mutations, then
# random walks), TPE whose repeats are answered from the results and not
# counted (benchmarks.suite.tpe).
DEDUP_BASELINES = {
    "random_dedup": M("random_dedup", "random_dedup"),
    "reg_evolution_dedup": M("reg_evolution_dedup", "evolution", dict(
        BASELINES["reg_evolution"].settings, no_repeats=True)),
    "tpe_dedup": M("tpe_dedup", "tpe", {"dedup": True}),
}


def _ours():
  """graph-nas' algorithms with their declared defaults: "default" is what
  api.search does with a function when given no setting (the algorithm
  AlgorithmSettings() picks, screening as SearchSettings' screen="auto"
  resolves for it), "default_unscreened" the same without screening (the
  package's default until 2026-12-03: "default" in results written
  before), then each learning algorithm, unscreened."""
  from graph_nas.search.settings import AlgorithmSettings, SearchSettings
  algorithm = AlgorithmSettings().algorithm
  search = SearchSettings().resolved(algorithm)
  out = {"default": M("default", algorithm, screen=search.screen,
                      candidates_per_trial=search.candidates_per_trial,
                      screen_explore=search.screen_explore,
                      screen_min_trials=search.screen_min_trials,
                      screen_neighbors=search.screen_neighbors),
         "default_unscreened": M("default_unscreened", algorithm)}
  for label, name in (("pqt", "pqt"), ("reinforce", "reinforce"),
                      ("gn_evolution", "evolution")):
    out[label] = M(label, name)
  return out


OURS = _ours()
# The default searcher screening with the learned predictor: K candidates
# per trial, the share explored, the predictor's kappa, as chosen on the
# tuning seeds (results/screening_suite/search_quality_tune_screen.md).
PREDICTOR_CHOICE = {"candidates_per_trial": 16, "screen_explore": 0.25,
                    "kappa": None}
# (Since 2026-12-03 the package's default: "default" runs the same.)
OURS["default_predictor"] = M("default_predictor", OURS["default"].algorithm,
                              screen="predictor", **PREDICTOR_CHOICE)
# The report: the baselines, the default, and the other algorithms.
REPORT_METHODS = tuple(BASELINES) + ("default",) + tuple(
    m for m in OURS if m not in ("default", "default_unscreened") and
    OURS[m].algorithm != OURS["default"].algorithm)
SCREEN_REPORT_METHODS = ("random", "random_dedup", "reg_evolution",
                         "reg_evolution_dedup", "tpe", "tpe_dedup",
                         "default_unscreened", "default")
# The controllers as they were before the defaults were chosen here (the
# previous declared defaults), and the paper's settings of the toy tasks
# (graph_nas.cli.experiment.PAPER_SETTINGS): for before/after rows.
_PAPER_CONTROLLER = {"no_repeats": False, "normalize_advantages": False}
BEFORE = {
    "pqt_before": M("pqt_before", "pqt", {"learning_rate": 1e-3,
                                          "pg_weight": 0.0,
                                          **_PAPER_CONTROLLER}),
    "reinforce_before": M("reinforce_before", "reinforce", {
        "learning_rate": 1e-3, **_PAPER_CONTROLLER}),
    "paper_stack_layers": M("paper_stack_layers", "reinforce", {
        "learning_rate": 1e-3, "entropy_weight": 0.1, **_PAPER_CONTROLLER}),
    "paper_select_optimizer": M("paper_select_optimizer", "reinforce", {
        "learning_rate": 1e-4, "entropy_weight": 0.8, **_PAPER_CONTROLLER}),
}
# Candidates of the tuning phase (seeds 0-99 only).
CANDIDATES = {}
for p in (10, 20, 50):
  for t in (3, 5, 10):
    if t < p:
      for lp in (0.0, 0.5, 0.9):
        for nr in (False, True):
          CANDIDATES[f"evo_p{p}_t{t}_l{lp:g}_{'nr' if nr else 'r'}"] = M(
              f"evo_p{p}_t{t}_l{lp:g}_{'nr' if nr else 'r'}", "evolution",
              {"population_size": p, "tournament_size": t,
               "local_step_prob": lp, "no_repeats": nr})
# Second round, around the first round's best (p20 t10 l0.5, no repeats).
for p in (10, 20, 30):
  for t in (10, 15, 20, 30):
    for lp in (0.3, 0.5, 0.7):
      if t <= p:
        label = f"evo_p{p}_t{t}_l{lp:g}_nr"
        CANDIDATES.setdefault(label, M(label, "evolution", {
            "population_size": p, "tournament_size": t,
            "local_step_prob": lp, "no_repeats": True}))
for lr in (3e-4, 1e-3, 3e-3, 1e-2):
  for nr in (False, True):
    for na in (False, True):
      for algo in ("pqt", "reinforce"):
        label = f"{algo}_lr{lr:g}_{'nr' if nr else 'r'}_{'na' if na else 'a'}"
        CANDIDATES[label] = M(label, algo, {"learning_rate": lr,
                                            "no_repeats": nr,
                                            "normalize_advantages": na})
# Screening with the predictor (issue 29), on the default searcher.
for k in (4, 8, 16):
  for e in (0.1, 0.25):
    for kap in (0.0, 0.5, 1.0):
      label = f"scr_k{k}_e{e:g}_kap{kap:g}"
      CANDIDATES[label] = M(label, OURS["default"].algorithm,
                            screen="predictor", candidates_per_trial=k,
                            screen_explore=e, kappa=kap)
# Screening with local candidates (screen_neighbors, issue 29): the
# neighbours of the N best trials scored beside the K proposals.
for nb in (3, 10):
  for e in (0.0, 0.1, 0.25):
    for kap in (0.0, 0.5):
      label = f"scr_k16_e{e:g}_kap{kap:g}_nb{nb}"
      CANDIDATES[label] = M(label, OURS["default"].algorithm,
                            screen="predictor", candidates_per_trial=16,
                            screen_explore=e, kappa=kap,
                            screen_neighbors=nb)
# The predictor with the task's domain features (NAS-Bench-Graph's paths,
# benchmarks.suite.nas_bench_graph.path_features; issue 29's moonshot).
for k in (16, 48):
  for e in (0.1, 0.25):
    for kap in (0.0, 0.5):
      label = f"scr_k{k}_e{e:g}_kap{kap:g}_tf"
      CANDIDATES[label] = M(label, OURS["default"].algorithm,
                            screen="predictor", candidates_per_trial=k,
                            screen_explore=e, kappa=kap, task_features=True)
# The predictor on the task's features, as chosen on tuning seeds 0-19
# (results/screening_suite/search_quality_tune_paths.md): the chosen
# predictor's settings, on the paths; and random search that refuses
# isomorphic twins as it does (the same advantage).
OURS["default_predictor_paths"] = M(
    "default_predictor_paths", OURS["default"].algorithm,
    screen="predictor", task_features=True, **PREDICTOR_CHOICE)
PATH_BASELINES = {"random_dedup_paths": M(
    "random_dedup_paths", "random_dedup", task_features=True)}
CANDIDATES["scr_k16_e0.25_kap0.5_nb3_tf"] = M(
    "scr_k16_e0.25_kap0.5_nb3_tf", OURS["default"].algorithm,
    screen="predictor", candidates_per_trial=16, screen_explore=0.25,
    kappa=0.5, screen_neighbors=3, task_features=True)
METHODS = {**BASELINES, **DEDUP_BASELINES, **PATH_BASELINES, **OURS, **BEFORE,
           **CANDIDATES,
           # The tuning files' name of reg_evolution.
           "evolution": M("evolution", "evolution", dict(
               BASELINES["reg_evolution"].settings))}
BUDGETS = (50, 100, 200, 500, 1000)


def parse_method(spec: str) -> driver.Method:
  """"reinforce:learning_rate=0.02+normalize_advantages=1" -> a Method
  (walks_per_update, the screening's settings and kappa are the Method's;
  the rest AlgorithmSettings fields)."""
  from graph_nas.search.settings import AlgorithmSettings, options
  algorithm, _, rest = spec.partition(":")
  kinds = {n: o.kind for n, o in options(AlgorithmSettings).items()}
  own = {"walks_per_update": int, "screen": str,
         "candidates_per_trial": int, "screen_explore": float,
         "screen_min_trials": int, "screen_neighbors": int,
         "kappa": float, "task_features": lambda v: v in ("1", "true", "True")}
  settings, fields = {}, {}
  for item in filter(None, rest.split("+")):
    name, _, value = item.partition("=")
    if name in own:
      fields[name] = own[name](value)
    elif kinds.get(name) is bool:
      settings[name] = value in ("1", "true", "True")
    elif name in kinds:
      settings[name] = kinds[name](value)
    else:
      raise SystemExit(f"--methods {spec!r}: unknown setting {name!r}")
  return driver.Method(spec, algorithm, settings, **fields)


def _init_worker():
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)


def method_of(label: str) -> driver.Method:
  """The method a label names: METHODS', or parse_method's spec."""
  return METHODS[label] if label in METHODS else parse_method(label)


# The Method fields that say how it screens: without screening they
# change nothing.
_SCREEN_FIELDS = ("candidates_per_trial", "screen_explore",
                  "screen_min_trials", "screen_neighbors", "kappa")


def method_key(spec: dict) -> str:
  """What a search ran (a Method's to_json(), as records store it), for
  finding its record whatever it was called: the fields (those a record
  lacks: today's defaults) but the label, and "screen": "none" with no
  screening field when it does not screen. A label whose definition
  changed (e.g. "default") thus never reads another method's records."""
  full = {**driver.Method("", "").to_json(), **spec}
  del full["label"]
  if full["screen"] == "none" or full["candidates_per_trial"] <= 1:
    for name in _SCREEN_FIELDS:
      full.pop(name)
    full["screen"] = "none"
  return json.dumps(full, sort_keys=True)


def _job(args):
  task_name, label, seed, budget = args
  task = tasks_lib.get(task_name)
  method = method_of(label)
  trace = driver.run(task, method, seed, budget)
  return {"task": task_name, "method": label, "seed": seed,
          "budget": budget, "spec": method.to_json(),
          "rewards": trace.rewards, "tests": trace.tests,
          "repeats": trace.repeats, "seconds": trace.seconds,
          "screened": trace.screened}


# Methods whose searches cost seconds (a controller's TensorFlow steps,
# TPE's model refits grow with the trials): they run to --costly_budget.
COSTLY = ("tpe", "pqt", "reinforce")  # algorithm names


def _budget_of(task_name, label, args):
  toy = not task_name.startswith("nbg_")
  budget = args.toy_budget if toy else args.budget
  algorithm = METHODS[label].algorithm
  if algorithm in COSTLY or METHODS[label].screen != "none":
    budget = min(budget, args.costly_budget)
  return budget


def _open(path, mode="rt"):
  """The results file: gzip'd JSON lines (appending adds a gzip member)."""
  return gzip.open(path, mode, encoding="utf-8")


def _records(path):
  """The results file's records; a last one cut short by a kill is
  dropped (that search runs again)."""
  out = []
  try:
    with _open(path) as f:
      for line in f:
        out.append(json.loads(line))
  except (EOFError, gzip.BadGzipFile, json.JSONDecodeError):
    pass
  return out


def run_jobs(args, path):
  done = set()
  if os.path.exists(path):
    for r in _records(path):
      done.add((r["task"], method_key(r["spec"]), r["seed"], r["budget"]))
  seeds = seeds_of(args)[args.skip_seeds:]
  jobs = [(t, m, s, _budget_of(t, m, args)) for m in args.methods
          for t in args.tasks for s in seeds]
  keys = {m: method_key(method_of(m).to_json()) for m in args.methods}
  todo = [j for j in jobs if (j[0], keys[j[1]], j[2], j[3]) not in done]
  print(f"{len(jobs)} searches, {len(jobs) - len(todo)} done before, "
        f"{len(todo)} to run on {args.workers} processes", flush=True)
  if not todo:
    return
  t0 = time.time()
  with mp.get_context("spawn").Pool(args.workers, _init_worker) as pool:
    for i, r in enumerate(pool.imap_unordered(_job, todo), 1):
      with _open(path, "at") as out:  # one member per search: a kill
        out.write(json.dumps(r) + "\n")  # loses at most this one
      if i % max(1, len(todo) // 50) == 0 or i == len(todo):
        el = time.time() - t0
        print(f"  {i}/{len(todo)} searches, {format_duration(el)} elapsed, "
              f"ETA {format_duration(el / i * (len(todo) - i))}", flush=True)


def seeds_of(args):
  if args.phase == "tune":
    if args.seeds > 100:
      raise SystemExit("--phase=tune: settings are chosen on seeds 0-99 "
                       "only (--seeds <= 100)")
    return list(range(args.seeds))
  return list(range(1000, 1000 + args.seeds))


# ------------------------------------------------------------------ report
def load(path, methods, tasks):
  """{(task, label, seed): record} of the methods' searches: the records
  of what each label runs today (method_key), whatever label they were
  written under."""
  labels = {}
  for m in methods:
    labels.setdefault(method_key(method_of(m).to_json()), []).append(m)
  rows = {}
  for r in _records(path):
    if r["task"] in tasks:
      for m in labels.get(method_key(r["spec"]), ()):
        rows[(r["task"], m, r["seed"])] = dict(r, method=m)
  return rows


def _table(rows, tasks, methods, seeds, budgets, references, args):
  lines = []
  per_budget_scores = {k: [] for k in budgets}
  for task_name in tasks:
    task = tasks_lib.get(task_name)
    lines.append(f"\n### {task_name} (optimum {task.optimum:.4f})\n")
    head = "| method | " + " | ".join(f"best@{k}" for k in budgets)
    if task.test:
      head += " | test of best@200"
    if task.family == "stack_layers":
      head += " | first hit 1.0: median (hits)"
    lines.append(head + " | s/search |")
    lines.append("|" + "---|" * (head.count("|")))
    for m in methods:
      have = [s for s in seeds if (task_name, m, s) in rows]
      if len(have) < len(seeds):
        continue
      cells = []
      for k in budgets:
        if k > rows[(task_name, m, have[0])]["budget"]:
          cells.append("-")
          continue
        v = [stats.best_at(rows[(task_name, m, s)]["rewards"], k)
             for s in have]
        cells.append(f"{np.mean(v):.4f}")
      if task.test:
        v = [stats.test_of_best(rows[(task_name, m, s)]["rewards"],
                                rows[(task_name, m, s)]["tests"], 200)
             for s in have]
        cells.append(f"{np.mean(v):.4f}")
      if task.family == "stack_layers":
        hits = [stats.first_hit(rows[(task_name, m, s)]["rewards"], 1.0)
                for s in have]
        fin = [h for h in hits if np.isfinite(h)]
        cells.append(f"{np.median(hits):.0f} ({len(fin)}/{len(hits)})")
      sec = np.mean([rows[(task_name, m, s)]["seconds"] for s in have])
      lines.append(f"| {m} | " + " | ".join(cells) + f" | {sec:.1f} |")
    # Paired differences of each reference against every other method.
    for reference in references:
      if reference not in methods:
        continue
      lines.append("")
      lines.append(f"{reference} minus each method, mean best (paired "
                   f"bootstrap 95 % interval over {len(seeds)} seeds):\n")
      lines.append("| vs | " + " | ".join(f"@{k}" for k in budgets
                                          if k <= 500) + " |")
      lines.append("|---|" + "---|" * len([k for k in budgets if k <= 500]))
      for m in methods:
        if m == reference or (task_name, m, seeds[0]) not in rows:
          continue
        cells = []
        for k in budgets:
          if k > 500:
            continue
          if min(rows[(task_name, x, seeds[0])]["budget"]
                 for x in (reference, m)) < k:
            cells.append("-")
            continue
          a = [stats.best_at(rows[(task_name, reference, s)]["rewards"], k)
               for s in seeds]
          b = [stats.best_at(rows[(task_name, m, s)]["rewards"], k)
               for s in seeds]
          d, lo, hi = stats.paired_bootstrap(a, b)
          mark = "**" if lo > 0 else ("~~" if hi < 0 else "")
          cells.append(f"{mark}{d:+.4f} [{lo:+.4f}, {hi:+.4f}]{mark}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    for k in budgets:
      scores = {}
      for m in methods:
        if all((task_name, m, s) in rows and
               rows[(task_name, m, s)]["budget"] >= k for s in seeds):
          scores[m] = float(np.mean([stats.best_at(
              rows[(task_name, m, s)]["rewards"], k) for s in seeds]))
      if len(scores) >= 2:
        per_budget_scores[k].append(scores)
  rank_lines = ["\n### Mean rank across tasks (1 = best mean best)\n",
                "| budget | tasks | " + " | ".join(methods) + " |",
                "|---|---|" + "---|" * len(methods)]
  for k in budgets:
    # Ranked among the methods that ran to k trials on every task.
    scored = [sc for sc in per_budget_scores[k]]
    common = set.intersection(*(set(sc) for sc in scored)) if scored \
        else set()
    if len(common) >= 2:
      r = stats.mean_ranks([{m: sc[m] for m in common} for sc in scored])
      rank_lines.append(f"| {k} | {len(scored)} | " + " | ".join(
          f"{r[m]:.2f}" if m in r else "-" for m in methods) + " |")
  return lines + rank_lines


def summary(rows, tasks, methods, seeds, reference="default",
            baselines=("reg_evolution", "tpe"), control="random"):
  """The compact tables of benchmarks/README.md and the issue's targets,
  checked: at 100 and 200 trials, the reference's mean best >= each
  baseline's or inside the paired 95 % interval; better than `control`
  with an interval excluding 0 on >= 2/3 of the tasks; the best mean rank;
  stack layers median first hit <= 40; select optimizer B = 4 best@200 >=
  0.60."""
  present = [m for m in methods if all((t, m, s) in rows for t in tasks
                                       for s in seeds)]
  out = []
  for k in (100, 200):
    out.append(f"\n**Mean best reward at {k} trials** ({len(seeds)} seeds; "
               "bold: the best of the row)\n")
    out.append("| task | " + " | ".join(present) + " |")
    out.append("|---|" + "---|" * len(present))
    scores = []
    for t in tasks:
      sc = {m: float(np.mean([stats.best_at(rows[(t, m, s)]["rewards"], k)
                              for s in seeds])) for m in present
            if rows[(t, m, seeds[0])]["budget"] >= k}
      scores.append(sc)
      top = max(sc.values())
      out.append(f"| {t} | " + " | ".join(
          ("-" if m not in sc else
           f"**{sc[m]:.4f}**" if sc[m] >= top - 1e-12 else f"{sc[m]:.4f}")
          for m in present) + " |")
    r = stats.mean_ranks(scores)
    out.append("| mean rank | " + " | ".join(f"{r[m]:.2f}" for m in present)
               + " |")
    # The targets.
    checks = []
    for base in baselines + (control,):
      if base not in present or reference not in present:
        continue
      ok = 0
      for t in tasks:
        a = [stats.best_at(rows[(t, reference, s)]["rewards"], k)
             for s in seeds]
        b = [stats.best_at(rows[(t, base, s)]["rewards"], k) for s in seeds]
        d, lo, hi = stats.paired_bootstrap(a, b)
        ok += (lo > 0) if base == control else (d >= 0 or hi >= 0)
      want = ("better than, interval excluding 0" if base == control
              else ">= or inside the 95 % interval")
      checks.append(f"{reference} vs {base} ({want}): {ok}/{len(tasks)} "
                    "tasks")
    best_rank = min(r, key=r.get)
    checks.append(f"best mean rank: {best_rank} ({r[best_rank]:.2f})")
    out.append("\nTargets at %d trials: " % k + "; ".join(checks) + ".")
  if reference in present:
    for t in tasks:
      if t == "stack_layers":
        hits = [stats.first_hit(rows[(t, reference, s)]["rewards"], 1.0)
                for s in seeds]
        out.append(f"\n{reference} on stack_layers: median first hit of "
                   f"1.0 at trial {np.median(hits):g} "
                   f"({sum(np.isfinite(hits))}/{len(hits)} seeds reach it; "
                   "target <= 40).")
      if t == "select_optimizer_b4":
        v = np.mean([stats.best_at(rows[(t, reference, s)]["rewards"], 200)
                     for s in seeds])
        out.append(f"\n{reference} on select_optimizer_b4: mean best@200 "
                   f"{v:.3f} (target >= 0.60).")
  return out


def _verdict(d, lo, hi):
  """A paired difference's word: better / at least as good (mean) /
  not significantly worse / worse."""
  if lo > 0:
    return "better"
  if d >= 0:
    return "tie_or_above"
  return "not_sig_worse" if hi >= 0 else "worse"


def screening_summary(rows, tasks, methods, seeds, references, baselines,
                      control="random", budgets=(100, 200)):
  """Issue 29's tables and targets: mean best per task and method with
  mean ranks; each reference minus each baseline (paired 95 % intervals);
  counted verdicts (better with an interval excluding 0 / mean at or above
  / below but inside the interval: not significantly worse, which is not
  "at least as good" / worse); regret against `control`'s on the
  NAS-Bench-Graph tasks (the moonshot: half of it at 200 trials)."""
  present = [m for m in methods if all((t, m, s) in rows for t in tasks
                                       for s in seeds)]
  bases = [b for b in baselines if b in present]
  out = []

  def best(t, m, k):
    return [stats.best_at(rows[(t, m, s)]["rewards"], k) for s in seeds]

  for k in budgets:
    if any(rows[(t, m, seeds[0])]["budget"] < k for t in tasks
           for m in present):
      continue
    out.append(f"\n### Mean best reward at {k} trials ({len(seeds)} seeds; "
               "bold: the best of the row)\n")
    out.append("| task | " + " | ".join(present) + " |")
    out.append("|---|" + "---|" * len(present))
    scores = []
    for t in tasks:
      sc = {m: float(np.mean(best(t, m, k))) for m in present}
      scores.append(sc)
      top = max(sc.values())
      out.append(f"| {t} | " + " | ".join(
          f"**{sc[m]:.4f}**" if sc[m] >= top - 1e-12 else f"{sc[m]:.4f}"
          for m in present) + " |")
    r = stats.mean_ranks(scores)
    out.append("| mean rank | " + " | ".join(f"{r[m]:.2f}" for m in present)
               + " |")
    best_rank = min(r, key=r.get)
    tops = [m for m in present if r[m] <= r[best_rank] + 1e-9]
    out.append(f"\nBest mean rank at {k}: {', '.join(tops)} "
               f"({r[best_rank]:.2f}).")
    for ref in references:
      if ref not in present:
        continue
      others = [b for b in bases + [x for x in references if x != ref]
                if b != ref]
      out.append(f"\n**{ref} minus each, mean best at {k} trials** (paired "
                 f"bootstrap 95 % interval over {len(seeds)} seeds; **bold**:"
                 " the interval excludes 0 in its favour, ~~struck~~: "
                 "against it)\n")
      out.append("| task | " + " | ".join(others) + " |")
      out.append("|---|" + "---|" * len(others))
      counts = {b: {} for b in others}
      for t in tasks:
        cells = []
        for b in others:
          d, lo, hi = stats.paired_bootstrap(best(t, ref, k), best(t, b, k))
          v = _verdict(d, lo, hi)
          counts[b][v] = counts[b].get(v, 0) + 1
          mark = "**" if v == "better" else "~~" if v == "worse" else ""
          cells.append(f"{mark}{d:+.4f} [{lo:+.4f}, {hi:+.4f}]{mark}")
        out.append(f"| {t} | " + " | ".join(cells) + " |")
      out.append("| better / at or above / below, not sig. / worse | " +
                 " | ".join("{} / {} / {} / {}".format(*(
                     counts[b].get(v, 0) for v in (
                         "better", "tie_or_above", "not_sig_worse",
                         "worse"))) for b in others) + " |")
      own = [b for b in bases if b != ref]  # a reference: not its own baseline
      met = all(counts[b].get("worse", 0) == 0 for b in own)
      n_worse = sum(counts[b].get("worse", 0) for b in own)
      n_nsw = sum(counts[b].get("not_sig_worse", 0) for b in own)
      out.append(f"\nTarget at {k} ({ref} at or above every baseline, or "
                 f"inside its 95 % interval, on every task): "
                 f"{'met' if met else 'missed'} ({n_worse} task-baseline "
                 f"pairs significantly worse, {n_nsw} below the baseline's "
                 f"mean but inside the interval, of {len(tasks) * len(own)}"
                 "); best mean rank: " + (
                     f"yes ({r[ref]:.2f})" if best_rank == ref else
                     f"tied ({r[ref]:.2f}, with {best_rank})"
                     if r[ref] <= r[best_rank] + 1e-9 else
                     f"no ({r[ref]:.2f} against {best_rank}'s "
                     f"{r[best_rank]:.2f})") + ".")
  nbg = [t for t in tasks if t.startswith("nbg_")]
  if nbg and control in present and all(
      rows[(t, m, seeds[0])]["budget"] >= 200 for t in nbg for m in present):
    out.append(f"\n### Regret at 200 trials (optimum - mean best) on "
               f"NAS-Bench-Graph, and its ratio to {control}'s (moonshot: "
               "<= 0.5 on every task)\n")
    out.append("| task | " + " | ".join(present) + " |")
    out.append("|---|" + "---|" * len(present))
    for t in nbg:
      opt = tasks_lib.get(t).optimum
      reg = {m: opt - float(np.mean(best(t, m, 200))) for m in present}
      out.append(f"| {t} | " + " | ".join(
          f"{reg[m]:.4f} ({reg[m] / reg[control]:.2f})" if reg[control] > 0
          else f"{reg[m]:.4f}" for m in present) + " |")
    for ref in references:
      if ref in present:
        ratios = []
        for t in nbg:
          opt = tasks_lib.get(t).optimum
          ratios.append((opt - np.mean(best(t, ref, 200))) /
                        (opt - np.mean(best(t, control, 200))))
        out.append(f"\nMoonshot, {ref}: regret <= half of {control}'s on "
                   f"{sum(x <= 0.5 for x in ratios)}/{len(nbg)} tasks "
                   f"(ratios {', '.join(f'{x:.2f}' for x in ratios)}).")
  return out


# The paper's toy experiment (Figs. 2, 4): its REINFORCE settings per task
# on the graph and linear forms, against random search on the graph form.
PAPER_ROWS = {"stack_layers": "reinforce_before",  # lr 1e-3, entropy 0.1
              "select_optimizer_b2": "paper_select_optimizer",
              "select_optimizer_b4": "paper_select_optimizer"}


def paper_table(rows, seeds):
  """The toy table of benchmarks/README.md's "Toy tasks", on `seeds`."""
  ks = (10, 25, 50, 100, 200)
  out = ["| task | form | " + " | ".join(f"best@{k}" for k in ks) +
         " | seeds at 1.0 | median first 1.0 |",
         "|---|---|" + "---|" * (len(ks) + 2)]
  for family, method in PAPER_ROWS.items():
    for form, task, m in (("graph", family, method),
                          ("linear", family + "_linear", method),
                          ("random", family, "random")):
      runs = [rows.get((task, m, s)) for s in seeds]
      if None in runs:
        continue
      cells = [f"{np.mean([stats.best_at(r['rewards'], k) for r in runs]):.3f}"
               for k in ks]
      hits = [stats.first_hit(r["rewards"][:200], 1.0) for r in runs]
      n = sum(np.isfinite(hits))
      med = f"{np.median(hits):g}" if n > len(hits) / 2 else "-"
      out.append(f"| {family} | {form} | " + " | ".join(cells) +
                 f" | {n}/{len(runs)} | {med} |")
  return out


def plot(rows, tasks, methods, seeds, out_png):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  cols = 3
  nrows = (len(tasks) + cols - 1) // cols
  fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows),
                           squeeze=False)
  for ax, task_name in zip(axes.flat, tasks):
    task = tasks_lib.get(task_name)
    for m in methods:
      have = [s for s in seeds if (task_name, m, s) in rows]
      if not have:
        continue
      curves = np.array([stats.best_so_far(rows[(task_name, m, s)]["rewards"])
                         for s in have])
      regret = task.optimum - curves
      mean = regret.mean(0)
      half = 1.96 * regret.std(0, ddof=1) / np.sqrt(len(have))
      x = np.arange(1, curves.shape[1] + 1)
      ax.plot(x, mean, label=m, lw=1.6 if m.startswith("default") else 1.0)
      ax.fill_between(x, np.maximum(mean - half, 1e-5), mean + half,
                      alpha=0.15)
    ax.set_xscale("log")
    # NAS-Bench-Graph's regrets span decades; the toy tasks' are read
    # better on a linear scale.
    ax.set_yscale("log" if task.family.startswith("nbg_") else "linear")
    ax.set_title(task_name, fontsize=10)
    ax.set_xlabel("trials")
    ax.set_ylabel("regret of mean best")
    ax.grid(alpha=0.3, which="both")
  for ax in axes.flat[len(tasks):]:
    ax.axis("off")
  handles, labels = axes.flat[0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="lower center", fontsize=9,
             ncol=min(len(labels), 7), frameon=False)
  fig.suptitle(f"Regret (optimum - best so far), mean over {len(seeds)} "
               "seeds, 95 % band of the mean", fontsize=11)
  fig.tight_layout(rect=(0, 0.03 + 0.03 * ((len(labels) - 1) // 7 + 1),
                         1, 0.97))
  fig.savefig(out_png, dpi=90)
  plt.close(fig)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--phase", choices=("tune", "report"), default="report",
                 help="tune: the seeds settings are chosen on; report: "
                 "seeds from 1000, that no choice saw")
  p.add_argument("--seeds", type=options.at_least(1), default=30,
                 help="tune: seeds 0..N-1 (N <= 100); report: 1000..")
  p.add_argument("--tasks", default=",".join(tasks_lib.names()),
                 help="comma-separated, of benchmarks.suite.tasks")
  p.add_argument("--methods", default=",".join(REPORT_METHODS),
                 help="comma-separated, of METHODS, or "
                 "algorithm:name=value+name=value")
  p.add_argument("--budget", type=options.at_least(1), default=500,
                 help="trials per NAS-Bench-Graph search")
  p.add_argument("--toy_budget", type=options.at_least(1), default=1000,
                 help="trials per toy-task search")
  p.add_argument("--costly_budget", type=options.at_least(1), default=200,
                 help="trials per search of TPE, PQT and REINFORCE (a "
                 "search of theirs takes seconds; see COSTLY)")
  p.add_argument("--workers", type=options.at_least(1), default=2,
                 help="searches run at once (processes)")
  p.add_argument("--reference", default="default",
                 help="the method compared with every other in the tables")
  p.add_argument("--references", default="",
                 help="several references (comma-separated; issue 29's "
                 "screening summary, against every baseline)")
  p.add_argument("--baselines", default=",".join(
      tuple(BASELINES) + tuple(DEDUP_BASELINES)),
                 help="the baselines of the screening summary")
  p.add_argument("--results_dir", default=RESULTS,
                 help="where the .jsonl.gz, .md and .png go")
  p.add_argument("--tag", default="", help="results file suffix")
  p.add_argument("--skip_seeds", type=options.at_least(0), default=0,
                 help="run the searches of all but the first N seeds (a "
                 "second process on another --tag; the tables use all)")
  p.add_argument("--no_run", action="store_true",
                 help="only write the tables and plots of what is stored")
  args = p.parse_args()
  args.tasks = [t for t in args.tasks.split(",") if t]
  args.methods = [m for m in args.methods.split(",") if m]
  for m in args.methods:  # "algorithm:name=value+name=value" specs
    if m not in METHODS and ":" in m:
      METHODS[m] = parse_method(m)
  unknown = [m for m in args.methods if m not in METHODS]
  if unknown:
    raise SystemExit(f"--methods: unknown {unknown} (known: "
                     f"{', '.join(METHODS)})")
  for t in args.tasks:
    tasks_lib.get(t)  # a bad name fails here, naming the task
  os.makedirs(args.results_dir, exist_ok=True)
  stem = os.path.join(args.results_dir,
                      f"search_quality_{args.phase}{args.tag}")
  references = [r for r in args.references.split(",") if r] or [
      args.reference]
  t0 = time.time()
  if not args.no_run:
    run_jobs(args, stem + ".jsonl.gz")
  seeds = seeds_of(args)
  rows = load(stem + ".jsonl.gz", set(args.methods), set(args.tasks))
  budgets = [k for k in BUDGETS if k <= max(args.budget, args.toy_budget)]
  from graph_nas.search.settings import AlgorithmSettings
  lines = [f"# Search quality, {args.phase} seeds {seeds[0]}-{seeds[-1]} "
           f"({len(seeds)})\n",
           f"Command: `python -m benchmarks.search_quality "
           f"{' '.join(sys.argv[1:])}`; default algorithm: "
           f"{AlgorithmSettings().algorithm}; wall time of this call "
           f"{format_duration(time.time() - t0)} (searches already in "
           "the .jsonl.gz are not rerun). Mean best reward over seeds.",
           "**bold**: the interval excludes 0 in the reference's favour; "
           "~~struck~~: against it."]
  if args.references:
    # Tasks grouped by the methods that ran on them (e.g. tpe_dedup not on
    # stack layers): one summary per group.
    groups = {}
    for t in args.tasks:
      have = tuple(m for m in args.methods if all((t, m, x) in rows
                                                  for x in seeds))
      groups.setdefault(have, []).append(t)
    lines += ["\n## Summary"]
    for have, group in sorted(groups.items(), key=lambda g: -len(g[1])):
      if len(groups) > 1:
        lines += [f"\n## Tasks {', '.join(group)}: {', '.join(have)}"]
      lines += screening_summary(rows, group, list(have), seeds, references,
                                 [b for b in args.baselines.split(",")
                                  if b])
  lines += ["\n## Per task"]
  lines += _table(rows, args.tasks, args.methods, seeds, budgets,
                  references, args)
  if not args.references:
    lines += ["\n## Summary"] + summary(rows, args.tasks, args.methods,
                                       seeds, args.reference)
  paper = paper_table(load(stem + ".jsonl.gz", set(METHODS), set(
      tasks_lib.names())), seeds)
  if len(paper) > 2:
    lines += ["\n## The paper's toy experiment (its REINFORCE settings)\n"]
    lines += paper
  with open(stem + ".md", "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))
  for family in sorted({tasks_lib.get(t).family[:3] for t in args.tasks}):
    group = [t for t in args.tasks if tasks_lib.get(t).family[:3] == family]
    plot(rows, group, args.methods, seeds, f"{stem}_{family}.png")
  print(f"wrote {stem}.md and {stem}_*.png")


if __name__ == "__main__":
  main()
