"""CIFAR-10 search on a CPU budget: graph vs linear vs random search.

  python benchmarks/cifar_graph_vs_linear.py [--max_trials=10] \
      [--data_dir=../shared/data/tfds] [--out=runs/bench_cifar]

Runs the launcher three times with the same child budget and trial count:
PQT on protos/cifar.textproto (graph), PQT on protos/cifar_linear.textproto
(linear), random search on the graph space. Prints a table (best validation
accuracy, test accuracy of the retrained best child, wall time, share of
wall time outside child evaluation) and writes an overlaid plot.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from absl import app, flags  # noqa: E402

from graph_nas import report  # noqa: E402
from graph_nas.store import TrialStore  # noqa: E402

_TRIALS = flags.DEFINE_integer("max_trials", 10, "Trials per search.")
_DATA = flags.DEFINE_string("data_dir", "../shared/data/tfds",
                            "tfds data dir.")
_OUT = flags.DEFINE_string("out", "runs/bench_cifar", "Output folder.")
_BUDGET = flags.DEFINE_list(
    "budget", ["--epochs=1", "--train_examples=1024", "--eval_examples=512",
               "--batch_size=64", "--walks_per_update=2"],
    "Child budget flags passed to the launcher.")

RUNS = [("graph (PQT)", "protos/cifar.textproto", "pqt"),
        ("linear (PQT)", "protos/cifar_linear.textproto", "pqt"),
        ("random (graph space)", "protos/cifar.textproto", "random")]


def main(argv):
  del argv
  rows, dirs = [], []
  for label, space, algo in RUNS:
    out = os.path.join(_OUT.value, label.split()[0])
    dirs.append(out)
    t0 = time.time()
    cmd = [sys.executable, "-m", "graph_nas.launch", f"--space={space}",
           f"--algorithm={algo}", f"--max_trials={_TRIALS.value}",
           f"--data_dir={_DATA.value}", f"--out_dir={out}",
           *_BUDGET.value]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
      sys.exit(f"{label} failed: {proc.stderr[-2000:]}")
    wall = time.time() - t0
    with TrialStore(os.path.join(out, "trials.sqlite")) as store:
      timing = store.get_meta("last_run_timing")
      best_child = store.get_meta("best_child") or {}
      best = store.best(1)[0]
    rows.append((label, best["reward"], best_child.get("test_accuracy"),
                 wall, timing["outside_evaluation_share"]))
    print(f"{label}: best val {best['reward']:.4f}, test "
          f"{best_child.get('test_accuracy')}, {wall:.0f}s", flush=True)
  report.plot_runs(dirs, os.path.join(_OUT.value, "graph_vs_linear.png"),
                   window=4)
  lines = ["| search | best val acc | test acc of best (retrained) | "
           "wall s | outside child evaluation |", "|---|---|---|---|---|"]
  for label, val, test, wall, share in rows:
    lines.append(f"| {label} | {val:.4f} | "
                 f"{'-' if test is None else f'{test:.4f}'} | {wall:.0f} | "
                 f"{100 * share:.2f} % |")
  print("\n".join(lines))
  with open(os.path.join(_OUT.value, "table.md"), "w") as f:
    f.write(json.dumps({"budget": _BUDGET.value,
                        "max_trials": _TRIALS.value}) + "\n\n")
    f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
  app.run(main)
