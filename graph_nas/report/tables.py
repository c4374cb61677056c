"""Summarise and plot search output folders (running or finished).

  python -m graph_nas.report --runs=runs/cifar_graph,runs/cifar_linear \
      --plot=runs/graph_vs_linear.png
  python -m graph_nas.report --runs=runs/cifar --html

Reads each folder's SQLite trial store. Prints a summary and the top trials
(image children as MnasNet block strings, e.g. r2_k3_s22_e6_i16_o24_se0.25).
--plot draws, like the paper's Figs. 6 and 7, the moving average (left) and
the best-so-far (right) reward against trials, one line per folder.

Into each folder it writes pareto.png for a run whose trials have a cost
(validation accuracy against multiply-adds, the non-dominated front joined,
the MnasNet target as a vertical line when the run set --target_flops), and
with --html report.html: one self-contained page (images embedded) with the
top table, the reward and Pareto plots, the learned policy drawn on the
space's graph, and the run's settings (graph_nas.report.html).
"""

import io
import math
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import app, flags, logging

from graph_nas.errors import GraphNasError
from graph_nas.search.store import TrialStore

from graph_nas.search.run_folder import (DB_NAME, PARETO_NAME, REWARDS_NAME, TOP_NAME)

# Column headers: every cost says what it holds and in which unit.
COLUMNS = ("rank", "trial", "reward", "val accuracy", "multiply-adds (M)",
           "params (M)", "trial seconds", "architecture")


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


def run_meta(out_dir: str) -> Dict:
  """The settings a search stored: run_info, identity, timing, best child."""
  path = os.path.join(out_dir, DB_NAME)
  if not os.path.exists(path):
    raise GraphNasError(f"no {DB_NAME} here: not a search output folder",
                        source=out_dir)
  with TrialStore(path) as store:
    return {k: store.get_meta(k) for k in ("run_info", "identity",
                                           "last_run_timing", "best_child")}


# ------------------------------------------------------------- the table
def _fmt_config(config: dict, width: int = 90) -> str:
  layers = config.get("layers")
  if isinstance(layers, list) and all(isinstance(l, dict) for l in layers):
    # The per-layer values, one layer per ';' (keys are in the space file).
    text = f"{len(layers)} layers: " + "; ".join(
        " ".join(str(v) for v in layer.values()) for layer in layers)
  else:
    text = str(config)
  return text if len(text) <= width else text[:width - 3] + "..."


def block_strings(config: dict) -> Optional[List[str]]:
  """The config's layers as MnasNet block strings, or None when it is not
  a valid image-child config (a toy space, or a broken config)."""
  layers = config.get("layers") if isinstance(config, dict) else None
  if not (isinstance(layers, list) and layers and
          all(isinstance(l, dict) for l in layers)):
    return None
  from graph_nas import child
  from graph_nas.child import block_args  # Keras: only for image configs
  try:
    return block_args.encode_block_strings(child.blocks_from_config(config))
  except GraphNasError:
    return None


def architecture_text(config: dict) -> str:
  """Block strings joined by spaces, else the compact display."""
  blocks = block_strings(config)
  return " ".join(blocks) if blocks is not None else _fmt_config(config)


def _num(value, scale=1.0, digits=4) -> str:
  if value is None:
    return "-"
  try:
    value = float(value)
  except (TypeError, ValueError):
    return "-"
  if not math.isfinite(value):
    return "-"
  return f"{value / scale:.{digits}f}"


def table_rows(rows: List[Dict]) -> List[Tuple[str, ...]]:
  """One tuple of cell texts (COLUMNS) per trial, best first as given."""
  out = []
  for i, r in enumerate(rows):
    m = r["metrics"]
    out.append((str(i + 1), str(r["trial_id"]), _num(r["reward"]),
                _num(m.get("val_accuracy")),
                _num(m.get("flops"), 1e6, 1), _num(m.get("params"), 1e6, 3),
                f"{r['seconds']:.1f}", architecture_text(r["config"])))
  return out


def top_table(rows: List[Dict]) -> str:
  """Markdown table of trials (best first as given)."""
  lines = ["| " + " | ".join(COLUMNS) + " |",
           "|" + "---|" * len(COLUMNS)]
  for cells in table_rows(rows):
    lines.append("| " + " | ".join(cells[:-1]) + f" | `{cells[-1]}` |")
  return "\n".join(lines)


def summary(trials: List[Dict]) -> Dict:
  ok = [t for t in trials if t["status"] == "ok"]
  failed = [t for t in trials if t["status"] != "ok"]
  rewards = [t["reward"] for t in ok]
  cached = [t for t in trials if t.get("cached_from") is not None]
  return {"trials": len(trials), "ok": len(ok), "failed": len(failed),
          "cached": len(cached),
          "best_reward": max(rewards) if rewards else None,
          "mean_reward": float(np.mean(rewards)) if rewards else None,
          "trial_seconds": float(sum(t["seconds"] for t in trials))}


def best_first(trials: List[Dict]) -> List[Dict]:
  """Successful trials, best first, one per architecture (a trial that
  reused an earlier result of the same architecture is left out)."""
  return sorted([t for t in trials if t["status"] == "ok" and
                 t.get("cached_from") is None],
                key=lambda t: (-t["reward"], t["trial_id"]))


# ---------------------------------------------------------- reward plot
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


def reward_figure(runs: Dict[str, List[Dict]], window: int = 20):
  plt = _pyplot()
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
  both metrics (multiply-adds > 0)."""
  keep, costs, accs = [], [], []
  for t in trials:
    if t["status"] != "ok":
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


def write_run_reports(out_dir: str, top: int = 10) -> Dict:
  """What a finished search writes: top_trials.md, rewards.png and, for a
  run with costs, pareto.png. Returns the table and the paths written."""
  trials = load_runs([out_dir])[out_dir]
  table = top_table(best_first(trials)[:top])
  top_path = os.path.join(out_dir, TOP_NAME)
  with open(top_path, "w", encoding="utf-8") as f:
    f.write(table + "\n")
  rewards = os.path.join(out_dir, REWARDS_NAME)
  plot_runs([out_dir], rewards)
  pareto = write_pareto(out_dir, trials=trials)
  return {"table": table, "top_trials": top_path, "rewards": rewards,
          "pareto": pareto}


def png_bytes(fig) -> bytes:
  buf = io.BytesIO()
  _save(fig, buf)
  return buf.getvalue()




def _define_flags():
  """The command line flags (defined only when run as a program, so that
  the module imports beside other absl programs)."""
  flags.DEFINE_list("runs", None, "Search output folders.")
  flags.DEFINE_string("plot", None, "Write the reward plot here (PNG).")
  flags.DEFINE_integer("top", 10, "Rows of the top-trials table.",
                       lower_bound=1)
  flags.DEFINE_integer("window", 20, "Moving-average window.",
                       lower_bound=1)
  flags.DEFINE_boolean("pareto", True, "Write pareto.png into each folder "
                       "whose trials have a cost.")
  flags.DEFINE_boolean("html", False, "Write report.html into each folder "
                       "(self-contained).")
  flags.DEFINE_string("space", None, "With --html: the space file the run "
                      "searched, for the policy graph (default: the --space "
                      "it was launched with).")
  flags.DEFINE_integer("walks", 512, "With --html: walks sampled to average "
                       "the controller's probabilities.", lower_bound=1)


FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.runs:
    raise app.UsageError("--runs is required")
  if FLAGS.space and len(FLAGS.runs) > 1:
    raise app.UsageError("--space applies to one folder: give one --runs")
  try:
    runs = load_runs(FLAGS.runs)
    for d, trials in runs.items():
      print(f"== {d}: {summary(trials)}")
      print(top_table(best_first(trials)[:FLAGS.top]))
      if FLAGS.pareto:
        path = write_pareto(d, trials=trials)  # logs why when it does not
        if path:
          print(f"wrote {path}")
      if FLAGS.html:
        from graph_nas.report import html as html_report
        path = html_report.write_html(d, space_path=FLAGS.space,
                                      top=FLAGS.top, walks=FLAGS.walks,
                                      window=FLAGS.window)
        print(f"wrote {path}")
    if FLAGS.plot:
      plot_runs(FLAGS.runs, FLAGS.plot, FLAGS.window)
      print(f"wrote {FLAGS.plot}")
  except GraphNasError as e:
    sys.exit(f"error: {e}")


def run():
  """Entry point of the command."""
  _define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
