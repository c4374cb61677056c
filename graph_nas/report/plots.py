"""The reports' plots: reward against trials, accuracy against cost.

The reward plot (:func:`reward_figure`, :func:`plot_runs`) draws, like the
paper's Figs. 6 and 7, the moving average (left) and the best-so-far
(right) reward against the trial id (the store's, as in the tables and the
log), one line per folder. The Pareto plot
(:func:`pareto_figure`, :func:`write_pareto`) draws a run's validation
accuracy against multiply-adds, the non-dominated front joined
(:func:`pareto_front`), with the MnasNet target as a vertical line when the
run set --target_flops. matplotlib is imported when a figure is drawn.
"""

import io
import math
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
from absl import logging

from graph_nas.report.trials import load_runs, run_meta
from graph_nas.search import halving
from graph_nas.search.run_folder import PARETO_NAME


# ------------------------------------------------------------- figures
def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _save(fig, path_or_file):
  """Saves a figure to a path or a binary file object; closes it."""
  plt = _pyplot()
  fig.savefig(path_or_file, dpi=120, format="png")
  plt.close(fig)


def png_bytes(fig) -> bytes:
  buf = io.BytesIO()
  _save(fig, buf)
  return buf.getvalue()


# ---------------------------------------------------------- reward plot
def curves(trials: List[Dict], window: int = 20):
  """(trial ids, moving average reward, best-so-far reward), in trial id
  order (the ids of the trial store, the tables and the log). With early
  stopping the moving average is of each trial's score at the rung it
  reached, the best of the trials trained to the full budget."""
  trials = sorted(trials, key=lambda t: t["trial_id"])
  rewards = np.array([t["reward"] if t["status"] == "ok" else np.nan
                      for t in trials], float)
  full = np.array([r if halving.trained_fully(t) else np.nan
                   for r, t in zip(rewards, trials)], float)
  x = np.array([t["trial_id"] for t in trials], int)
  filled = np.where(np.isnan(rewards), 0.0, rewards)
  valid = (~np.isnan(rewards)).astype(float)
  kernel = np.ones(window)
  num = np.convolve(filled, kernel)[:len(filled)]
  den = np.convolve(valid, kernel)[:len(filled)]
  moving = np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)
  best = np.fmax.accumulate(full) if len(full) else full
  return x, moving, best


def reward_figure(runs: Dict[str, List[Dict]], window: int = 20):
  plt = _pyplot()
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
  for d, trials in runs.items():
    x, moving, best = curves(trials, window)
    label = os.path.basename(os.path.normpath(d))
    ax1.plot(x, moving, label=label)
    ax2.plot(x, best, label=label)
  stopped = any(not halving.trained_fully(t)
                for trials in runs.values() for t in trials)
  ax1.set_title(f"moving average reward (window {window})" +
                ("\nstopped children: their score at the rung reached"
                 if stopped else ""), fontsize=10 if stopped else None)
  ax2.set_title("best reward" + (" (children trained to the full budget)"
                                 if stopped else ""),
                fontsize=10 if stopped else None)
  from matplotlib import ticker
  for ax in (ax1, ax2):
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel("trial id")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
  fig.tight_layout()
  return fig


def plot_runs(out_dirs: Sequence[str], path, window: int = 20):
  """Writes the reward plot of the folders to a path (or file object)."""
  _save(reward_figure(load_runs(out_dirs), window), path)


# ---------------------------------------------------------- Pareto front
def pareto_front(costs: Sequence[float], accuracies: Sequence[float]
                 ) -> List[int]:
  """Indices of the non-dominated points, by increasing cost.

  A point is dominated when another costs no more and is at least as
  accurate, and is cheaper or more accurate. Of identical points, the first
  is kept. NaN points are never on the front.
  """
  costs = np.asarray(costs, float)
  accs = np.asarray(accuracies, float)
  if costs.shape != accs.shape:
    raise ValueError("costs and accuracies differ in length")
  ok = np.flatnonzero(np.isfinite(costs) & np.isfinite(accs))
  order = sorted(ok, key=lambda i: (costs[i], -accs[i], i))
  front, best = [], -math.inf
  for i in order:
    if accs[i] > best:
      front.append(int(i))
      best = accs[i]
  return front


def cost_points(trials: List[Dict]):
  """(trials, multiply-adds, val accuracies) of the ok trials that have
  both metrics (multiply-adds > 0) and trained their whole budget (a child
  stopped early was scored after less training: not on this scale)."""
  keep, costs, accs = [], [], []
  for t in trials:
    if t["status"] != "ok" or not halving.trained_fully(t):
      continue
    m = t["metrics"]
    try:
      cost, acc = float(m["flops"]), float(m["val_accuracy"])
    except (KeyError, TypeError, ValueError):
      continue
    if cost > 0 and math.isfinite(cost) and math.isfinite(acc):
      keep.append(t)
      costs.append(cost)
      accs.append(acc)
  return keep, np.array(costs), np.array(accs)


def target_flops_of(meta: Dict) -> Optional[float]:
  """The MnasNet target (multiply-adds) a run was launched with, if any."""
  info = (meta or {}).get("run_info") or {}
  value = info.get("target_flops")
  try:
    value = float(value)
  except (TypeError, ValueError):
    return None
  return value if value > 0 and math.isfinite(value) else None


def pareto_figure(trials: List[Dict], target_flops: Optional[float] = None,
                  title: str = ""):
  """Validation accuracy against multiply-adds, front highlighted; None
  when no trial has both metrics."""
  kept, costs, accs = cost_points(trials)
  if not kept:
    return None
  plt = _pyplot()
  mega = costs / 1e6
  front = pareto_front(costs, accs)
  ids = np.array([t["trial_id"] for t in kept])
  fig, ax = plt.subplots(figsize=(8, 5))
  sc = ax.scatter(mega, accs, c=ids, cmap="viridis", s=22, alpha=0.75,
                  edgecolors="none", label=f"trial ({len(kept)})", zorder=2)
  cbar = fig.colorbar(sc, ax=ax, pad=0.01)
  cbar.set_label("trial id (search order)")
  fx, fy = mega[front], accs[front]
  ax.plot(fx, fy, drawstyle="steps-post", color="#d62728", lw=1.6,
          zorder=3)
  ax.scatter(fx, fy, s=60, facecolors="none", edgecolors="#d62728", lw=1.6,
             zorder=4, label=f"Pareto front ({len(front)})")
  if len(front) <= 12:
    for i in front:
      ax.annotate(f"#{ids[i]}", (mega[i], accs[i]), textcoords="offset "
                  "points", xytext=(4, 4), fontsize=8, color="#d62728")
  best = max(range(len(kept)), key=lambda i: (kept[i]["reward"], -ids[i]))
  ax.scatter([mega[best]], [accs[best]], marker="*", s=200, color="#ff7f0e",
             edgecolors="black", lw=0.6, zorder=5,
             label=f"best reward (#{ids[best]})")
  if target_flops:
    ax.axvline(target_flops / 1e6, color="#555555", ls="--", lw=1.2,
               zorder=1, label=f"MnasNet target {target_flops / 1e6:g} M")
  ax.set_xscale("log")
  from matplotlib import ticker
  ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1, 2, 5)))
  ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
  ax.xaxis.set_minor_formatter(ticker.NullFormatter())
  lo, hi = mega.min(), mega.max()
  if target_flops:
    lo, hi = min(lo, target_flops / 1e6), max(hi, target_flops / 1e6)
  ax.set_xlim(lo / 1.15, hi * 1.15)
  ax.set_xlabel("multiply-adds (M, log scale)")
  ax.set_ylabel("validation accuracy")
  ax.set_title(title or "validation accuracy against multiply-adds")
  ax.grid(alpha=0.3, which="both")
  ax.legend(loc="lower right", fontsize=9)
  fig.tight_layout()
  return fig


def write_pareto(out_dir: str, path: Optional[str] = None,
                 trials: Optional[List[Dict]] = None) -> Optional[str]:
  """Writes out_dir/pareto.png (or `path`); None, with a log line, for a
  run whose trials have no cost metric (a toy run)."""
  if trials is None:
    trials = load_runs([out_dir])[out_dir]
  meta = run_meta(out_dir)
  name = os.path.basename(os.path.normpath(out_dir))
  fig = pareto_figure(trials, target_flops_of(meta),
                      f"{name}: validation accuracy against multiply-adds")
  if fig is None:
    logging.info("%s: no trial has multiply-adds and a validation accuracy "
                 "(a toy run?): no Pareto plot", out_dir)
    return None
  path = path or os.path.join(out_dir, PARETO_NAME)
  _save(fig, path)
  return path
