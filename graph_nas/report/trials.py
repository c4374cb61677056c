"""The trials of search output folders, read for reports and tabulated.

Reads a folder's SQLite trial store (:func:`load_runs`) and the settings
the search stored with it (:func:`run_meta`); summarises (:func:`summary`)
and ranks (:func:`best_first`) its trials, and lays out the top-trials
table: one row of cell texts per trial (:func:`table_rows`, under
:data:`COLUMNS`; image children as MnasNet block strings, e.g.
r2_k3_s22_e6_i16_o24_se0.25), as Markdown (:func:`top_table`) or in the
HTML report (graph_nas.report.html). Plots: graph_nas.report.plots.
"""

import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from graph_nas.errors import GraphNasError
from graph_nas.search.halving import trained_fully as is_full
from graph_nas.search.run_folder import DB_NAME
from graph_nas.search.store import TrialStore

# Column headers: every cost says what it holds and in which unit.
COLUMNS = ("rank", "trial", "reward", "val accuracy", "multiply-adds (M)",
           "params (M)", "trial seconds", "budget trained", "architecture")


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


def budget_text(row: Dict) -> str:
  """How much of its budget a trial trained: "all", or with early
  stopping "1/4 (stopped at rung 0)"; its reward is its score there."""
  if is_full(row):
    return "all"
  import fractions
  share = fractions.Fraction(row["budget_fraction"]).limit_denominator(64)
  return f"{share} (stopped at rung {row.get('rung')})"


def table_rows(rows: List[Dict]) -> List[Tuple[str, ...]]:
  """One tuple of cell texts (COLUMNS) per trial, best first as given."""
  out = []
  for i, r in enumerate(rows):
    m = r["metrics"]
    out.append((str(i + 1), str(r["trial_id"]), _num(r["reward"]),
                _num(m.get("val_accuracy")),
                _num(m.get("flops"), 1e6, 1), _num(m.get("params"), 1e6, 3),
                f"{r['seconds']:.1f}", budget_text(r),
                architecture_text(r["config"])))
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
  full = [t["reward"] for t in ok if is_full(t)]
  stopped = [t for t in ok if not is_full(t) and
             t.get("cached_from") is None]
  return {"trials": len(trials), "ok": len(ok), "failed": len(failed),
          "cached": len(cached), "stopped_early": len(stopped),
          "best_reward": max(full) if full else None,
          "mean_reward": float(np.mean(rewards)) if rewards else None,
          "trial_seconds": float(sum(t["seconds"] for t in trials))}


def best_first(trials: List[Dict]) -> List[Dict]:
  """Successful trials, best first, one per architecture (a trial that
  reused an earlier result of the same architecture is left out). With
  early stopping the trials trained to the full budget come first (the
  best child is one of them); those stopped early follow, by their score
  at the rung they reached."""
  return sorted([t for t in trials if t["status"] == "ok" and
                 t.get("cached_from") is None],
                key=lambda t: (not is_full(t), -t["reward"], t["trial_id"]))
