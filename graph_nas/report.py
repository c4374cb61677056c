"""Summarise and plot search output folders (running or finished).

  python -m graph_nas.report --runs=runs/cifar_graph,runs/cifar_linear \
      --plot=runs/graph_vs_linear.png

Reads only each folder's SQLite trial store. The plot shows, like the
paper's Figs. 6 and 7, the moving average (left) and the best-so-far
(right) reward against trials, one line per folder.
"""

import os
import sys
from typing import Dict, List, Sequence

import numpy as np
from absl import app, flags

from graph_nas.errors import GraphNasError
from graph_nas.store import TrialStore

DB_NAME = "trials.sqlite"


def load_runs(out_dirs: Sequence[str]) -> Dict[str, List[Dict]]:
  runs = {}
  for d in out_dirs:
    path = os.path.join(d, DB_NAME)
    if not os.path.exists(path):
      raise GraphNasError(f"no {DB_NAME} here: not a search output folder",
                          source=d)
    with TrialStore(path) as store:
      runs[d] = store.trials()
  return runs


def _fmt_config(config: dict, width: int = 90) -> str:
  layers = config.get("layers")
  if isinstance(layers, list) and all(isinstance(l, dict) for l in layers):
    # The per-layer values, one layer per ';' (keys are in the space file).
    text = f"{len(layers)} layers: " + "; ".join(
        " ".join(str(v) for v in layer.values()) for layer in layers)
  else:
    text = str(config)
  return text if len(text) <= width else text[:width - 3] + "..."


def top_table(rows: List[Dict]) -> str:
  lines = ["| rank | trial | reward | val acc | params | MFLOPs | seconds "
           "| config |", "|---|---|---|---|---|---|---|---|"]
  for i, r in enumerate(rows):
    m = r["metrics"]
    acc = m.get("val_accuracy")
    params = m.get("params")
    flops = m.get("flops")
    lines.append(
        f"| {i + 1} | {r['trial_id']} | {r['reward']:.4f} | "
        f"{'-' if acc is None else f'{acc:.4f}'} | "
        f"{'-' if params is None else f'{int(params):,}'} | "
        f"{'-' if flops is None else f'{flops / 1e6:.1f}'} | "
        f"{r['seconds']:.1f} | `{_fmt_config(r['config'])}` |")
  return "\n".join(lines)


def summary(trials: List[Dict]) -> Dict:
  ok = [t for t in trials if t["status"] == "ok"]
  failed = [t for t in trials if t["status"] != "ok"]
  rewards = [t["reward"] for t in ok]
  return {"trials": len(trials), "ok": len(ok), "failed": len(failed),
          "best_reward": max(rewards) if rewards else None,
          "mean_reward": float(np.mean(rewards)) if rewards else None,
          "trial_seconds": float(sum(t["seconds"] for t in trials))}


def curves(trials: List[Dict], window: int = 20):
  """(trial numbers, moving average reward, best-so-far reward)."""
  rewards = np.array([t["reward"] if t["status"] == "ok" else np.nan
                      for t in trials], float)
  x = np.arange(1, len(rewards) + 1)
  filled = np.where(np.isnan(rewards), 0.0, rewards)
  valid = (~np.isnan(rewards)).astype(float)
  kernel = np.ones(window)
  num = np.convolve(filled, kernel)[:len(filled)]
  den = np.convolve(valid, kernel)[:len(filled)]
  moving = np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)
  best = np.fmax.accumulate(rewards) if len(rewards) else rewards
  return x, moving, best


def plot_runs(out_dirs: Sequence[str], path: str, window: int = 20):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  runs = load_runs(out_dirs)
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
  for d, trials in runs.items():
    x, moving, best = curves(trials, window)
    label = os.path.basename(os.path.normpath(d))
    ax1.plot(x, moving, label=label)
    ax2.plot(x, best, label=label)
  ax1.set_title(f"moving average reward (window {window})")
  ax2.set_title("best reward")
  for ax in (ax1, ax2):
    ax.set_xlabel("trials")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


_RUNS = flags.DEFINE_list("runs", None, "Search output folders.")
_PLOT = flags.DEFINE_string("plot", None, "Write the reward plot here (PNG).")
_TOP = flags.DEFINE_integer("top", 10, "Rows of the top-trials table.",
                            lower_bound=1)
_WINDOW = flags.DEFINE_integer("window", 20, "Moving-average window.",
                               lower_bound=1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _RUNS.value:
    raise app.UsageError("--runs is required")
  try:
    runs = load_runs(_RUNS.value)
    for d, trials in runs.items():
      print(f"== {d}: {summary(trials)}")
      ok = sorted([t for t in trials if t["status"] == "ok"],
                  key=lambda t: (-t["reward"], t["trial_id"]))
      print(top_table(ok[:_TOP.value]))
    if _PLOT.value:
      plot_runs(_RUNS.value, _PLOT.value, _WINDOW.value)
      print(f"wrote {_PLOT.value}")
  except GraphNasError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
