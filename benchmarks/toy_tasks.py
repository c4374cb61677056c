"""Reproduce the paper's toy experiments and measure controller speed.

  python -m benchmarks.toy_tasks [--replicas=10] [--trials=200] \
      [--bench_out=benchmarks/results/toy_tasks]

Prints (and writes to <out>/toy_table.md) a table per setting: mean best
reward at trials 10, 25, 50, 100, 200; replicas reaching 1.0; median trial
of the first 1.0 -- for graph, linear and random search on stack layers and
select optimizer (B = 2, 4). Writes one PNG per task and setting (paper
Figs. 2, 4). Then measures walks sampled per second at batch 1 and 256 and
milliseconds per update step.
"""

import argparse
import glob
import json
import os
import time

import numpy as np
from absl import flags

from benchmarks import options
from graph_nas import space as space_lib
from graph_nas.cli import experiment
from graph_nas.search import algorithms
from graph_nas.search.controller import DynamicController

def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  # --replicas and --trials: graph_nas.experiment's flags (their default,
  # help and lower bound).
  for name in ("replicas", "trials"):
    flag = flags.FLAGS[name]
    parser.add_argument(f"--{name}",
                        type=options.at_least(flag.parser.lower_bound),
                        default=flag.default,
                        help=f"{flag.help.rstrip('.')} "
                        f"(graph_nas.experiment's --{name})")
  parser.add_argument("--bench_out", default="benchmarks/results/toy_tasks",
                      help="output folder")
  parser.add_argument("--skip_toy", action="store_true",
                      help="only measure speed (and rewrite the table from "
                      "the stored curves)")
  parser.add_argument("--settings", default="paper,tuned",
                      help="which settings rows to run (comma-separated): "
                      "paper, tuned")
  args = parser.parse_args()
  args.settings = [x for x in args.settings.split(",") if x]
  return args


TASKS = ["stack_layers", "select_optimizer_b2", "select_optimizer_b4"]
# (label, algorithm, lr, entropy, walks per update); None = paper setting.
SETTINGS = [
    ("paper (REINFORCE)", "reinforce", None, None, 1),
    # Tuned: a 5x larger learning rate (a quick sweep on 5 replicas of the
    # graph forms: REINFORCE lr 0.005 > paper; PQT lr 0.01 / 0.003 got stuck
    # on its first queue on both tasks).
    ("tuned (REINFORCE, lr 0.005, entropy 0.1)", "reinforce", 0.005, 0.1, 1),
]


def toy(out, args):
  rows = []
  for label, algo, lr, beta, wpu in SETTINGS:
    if label.split()[0] not in args.settings:
      continue
    for task in TASKS:
      lr_ = lr if lr is not None else \
          experiment.PAPER_SETTINGS[task]["learning_rate"]
      beta_ = beta if beta is not None else \
          experiment.PAPER_SETTINGS[task]["entropy_weight"]
      results = {}
      for form in experiment.FORMS:
        if form == "random" and not label.startswith("paper"):
          continue  # random search has no settings: it is in the paper rows
        t0 = time.time()
        tag = "paper" if label.startswith("paper") else "tuned"
        rewards = experiment.run_form(
            form, task, experiment.paper_algorithm(
                algorithm=algo, learning_rate=lr_, entropy_weight=beta_,
                pg_weight=0.0), replicas=args.replicas, trials=args.trials,
            walks_per_update=wpu, seed=0, spaces_dir="protos",
            out=os.path.join("runs", "toy_tasks", tag, task),
            log_every=False)
        curves = [experiment.best_so_far(r) for r in rewards]
        results[form] = curves
        s = experiment.summarize(curves)
        rows.append((label, task, form, s, time.time() - t0))
        print(f"{label:34s} {task:20s} {form:7s} {json.dumps(s)} "
              f"({time.time() - t0:.0f}s)", flush=True)
      tag = "paper" if label.startswith("paper") else "tuned"
      experiment.plot(results, f"{task}: {label}",
                      os.path.join(out, f"toy_{task}_{tag}.png"))
      with open(os.path.join(out, f"toy_{task}_{tag}.json"), "w") as f:
        json.dump(results, f)
  del rows
  write_table(out, args.trials)


def write_table(out, trials):
  """The table of every toy_<task>_<setting>.json in `out`."""
  labels = {label.split()[0]: label for label, *_ in SETTINGS}
  cps = [c for c in (10, 25, 50, 100, 200) if c <= trials]
  lines = ["| setting | task | form | " +
           " | ".join(f"best@{c}" for c in cps) +
           " | replicas at 1.0 | median first 1.0 |",
           "|" + "---|" * (len(cps) + 5)]
  for tag in ("paper", "tuned"):
    for task in TASKS:
      path = os.path.join(out, f"toy_{task}_{tag}.json")
      if not os.path.exists(path):
        continue
      with open(path) as f:
        results = json.load(f)
      for form, curves in results.items():
        s = experiment.summarize(curves)
        vals = " | ".join(f"{s[f'mean_best@{c}']:.3f}" for c in cps)
        med = s["median_first_1.0"]
        lines.append(f"| {labels[tag]} | {task} | {form} | {vals} | "
                     f"{s['replicas_at_1.0']}/{s['replicas']} | "
                     f"{'-' if med is None else f'{med:.0f}'} |")
  table = "\n".join(lines)
  print(table)
  with open(os.path.join(out, "toy_table.md"), "w") as f:
    f.write(table + "\n")


def speed(out):
  spaces = [space_lib.load(p) for p in sorted(glob.glob(
      "protos/*.textproto"))]
  most_actions = max(spaces, key=lambda s: s.num_global_actions)
  longest = max(spaces, key=lambda s: (s.max_steps if not s.is_cyclic
                                       else 0, len(s.vertex_names)))
  stack = space_lib.load("protos/stack_layers.textproto")
  lines = ["| space | measure | value |", "|---|---|---|"]
  for s in [stack, most_actions, longest]:
    c = DynamicController(s, seed=0)
    for batch in (1, 256):
      c.sample(batch)  # trace
      reps = 200 if batch == 1 else 20
      t0 = time.perf_counter()
      n = sum(len(c.sample(batch)) for _ in range(reps))
      rate = n / (time.perf_counter() - t0)
      lines.append(f"| {s.name} | walks sampled / s, batch {batch} | "
                   f"{rate:,.0f} |")
    for wpu in (1, 16):
      algo = algorithms.Reinforce(s, seed=0)
      walks = algo.propose(wpu)
      rewards = list(np.linspace(0, 1, wpu))
      algo.update(walks, rewards)  # trace
      t0 = time.perf_counter()
      reps = 50
      for _ in range(reps):
        algo.update(walks, rewards)
      ms = (time.perf_counter() - t0) / reps * 1000
      lines.append(f"| {s.name} | REINFORCE update step, {wpu} walks | "
                   f"{ms:.1f} ms |")
  table = "\n".join(lines)
  print(table)
  with open(os.path.join(out, "controller_speed.md"), "w") as f:
    f.write(table + "\n")


def main():
  args = parse_args()
  os.makedirs(args.bench_out, exist_ok=True)
  if not args.skip_toy:
    toy(args.bench_out, args)
  else:
    write_table(args.bench_out, args.trials)
  speed(args.bench_out)


if __name__ == "__main__":
  main()
