"""The trials of search output folders, read for reports and tabulated.

Reads a folder's SQLite trial store (:func:`load_runs`) and the settings
the search stored with it (:func:`run_meta`); summarises (:func:`summary`)
and ranks (:func:`best_first`) its trials, and lays out the top-trials
table (:func:`trial_table`): one row of cell texts per trial with the
trial's whole config, one column per config key (`optimizer`,
`learning_rate`, `layers (width)`: 128; 64; 32), image children as MnasNet
block strings (r2_k3_s22_e6_i16_o24_se0.25); a column with nothing to say
for the run (no trial has a cost, none stopped early) is left out. The
failed trials are tabulated with their reasons (:func:`failed_table`).
Markdown: :func:`top_table`, and top_trials.md as a whole
(:func:`trials_markdown`); the HTML report: graph_nas.report.html. Plots:
graph_nas.report.plots.
"""

import dataclasses
import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from graph_nas.errors import GraphNasError
from graph_nas.search.halving import trained_fully as is_full
from graph_nas.search.run_folder import DB_NAME
from graph_nas.search.store import TrialStore

def _open_store(path: str) -> TrialStore:
  """The trial store opened for reading (never written: a run folder may
  be read-only, e.g. an archived run)."""
  return TrialStore(path, read_only=True)


def load_runs(out_dirs: Sequence[str]) -> Dict[str, List[Dict]]:
  runs = {}
  for d in out_dirs:
    path = os.path.join(d, DB_NAME)
    if not os.path.exists(path):
      raise GraphNasError(f"no {DB_NAME} here: not a search output folder",
                          source=d)
    with _open_store(path) as store:
      runs[d] = store.trials()
  return runs


def run_meta(out_dir: str) -> Dict:
  """The settings a search stored: run_info, identity, timing, best child."""
  path = os.path.join(out_dir, DB_NAME)
  if not os.path.exists(path):
    raise GraphNasError(f"no {DB_NAME} here: not a search output folder",
                        source=out_dir)
  with _open_store(path) as store:
    return {k: store.get_meta(k) for k in ("run_info", "identity",
                                           "last_run_timing", "best_child")}


# ------------------------------------------------------------- the table
# Every column the table can have, in order (every cost says what it holds
# and in which unit); a run's table leaves out those with nothing to say
# for its trials (see :func:`trial_table`). Its config columns come last:
# one per config key, or the MnasNet block strings.
COLUMNS = ("rank", "trial", "reward", "val accuracy", "multiply-adds (M)",
           "params (M)", "trial seconds", "budget trained", "architecture")
# A config with more keys than this is one "configuration" column.
MAX_CONFIG_COLUMNS = 8
FAILED_LISTED = 5  # failed trials listed in top_trials.md


@dataclasses.dataclass
class Table:
  """A table of trials: its header, one tuple of cell texts per trial,
  the indexes of its numeric columns and of its block-string column."""
  columns: List[str]
  rows: List[Tuple[str, ...]]
  numeric: Tuple[int, ...] = ()
  blocks: Optional[int] = None


def _scalar(value) -> str:
  if isinstance(value, float):
    return f"{value:g}"
  return str(value)


def _fields(items) -> Optional[Tuple[str, ...]]:
  """The keys every dict in items has, in order, when all have the same
  keys; else None."""
  keys = None
  for item in items:
    if not isinstance(item, dict):
      return None
    if keys is None:
      keys = tuple(item)
    elif tuple(item) != keys:
      return None
  return keys


def _value_text(value, fields: Optional[Tuple[str, ...]] = None) -> str:
  """A config value as text: a list one element per ';' (an element with
  the known `fields` as its values, else as key=value pairs)."""
  if isinstance(value, list):
    if not value:
      return "[]"
    return "; ".join(_value_text(v, fields) for v in value)
  if isinstance(value, dict):
    if fields is not None and tuple(value) == fields:
      return " ".join(_value_text(v) for v in value.values())
    return " ".join(f"{k}={_value_text(v)}" for k, v in value.items())
  return _scalar(value)


def _key_order(configs) -> List[str]:
  """The keys of the configs: plain values first, then lists and nested
  fields (each group sorted by name)."""
  keys = {}
  for c in configs:
    for k, v in c.items():
      keys[k] = keys.get(k, False) or isinstance(v, (list, dict))
  return sorted(keys, key=lambda k: (keys[k], k))


def _key_header(key, configs) -> Tuple[str, Optional[Tuple[str, ...]]]:
  """A key's column header and the fields its list elements share."""
  items = [item for c in configs if isinstance(c.get(key), list)
           for item in c[key]]
  fields = _fields(items) if items else None
  if fields:
    return f"{key} ({'/'.join(fields)})", fields
  return key, None


def config_text(config: dict) -> str:
  """The whole config on one line: "learning_rate: 0.001, optimizer: adam,
  layers (width): 128; 64; 32"."""
  if not isinstance(config, dict):
    return str(config)
  if not config:
    return "{}"
  parts = []
  for key in _key_order([config]):
    header, fields = _key_header(key, [config])
    parts.append(f"{header}: {_value_text(config[key], fields)}")
  return ", ".join(parts)


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
  """Block strings joined by spaces, else the whole config on one line
  (:func:`config_text`)."""
  blocks = block_strings(config)
  return " ".join(blocks) if blocks is not None else config_text(config)


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


def _config_columns(configs) -> Tuple[List[str], List[List[str]], Optional[
    int]]:
  """(headers, cells per config, index of the block-string column): the
  configs laid out in columns."""
  blocks = [block_strings(c) for c in configs]
  if configs and all(b is not None for b in blocks):
    # Image children: their layers as block strings, and beside them any
    # other key whose value differs between the trials (the stem, the
    # head are the same in every architecture of the shipped spaces).
    keys = [k for k in _key_order(configs) if k != "layers" and
            len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]
    headers = keys + ["architecture"]
    cells = [[_value_text(c[k]) if k in c else "-" for k in keys] +
             [" ".join(b)] for c, b in zip(configs, blocks)]
    return headers, cells, len(headers) - 1
  dicts = [c if isinstance(c, dict) else {} for c in configs]
  keys = _key_order(dicts)
  if not keys and all(isinstance(c, dict) for c in configs):
    return [], [[] for _ in configs], None  # none decoded (failed walks)
  if not keys or len(keys) > MAX_CONFIG_COLUMNS or \
      any(not isinstance(c, dict) for c in configs):
    return ["configuration"], [[config_text(c)] for c in configs], None
  heads = [_key_header(k, dicts) for k in keys]
  cells = [[_value_text(c[k], f) if k in c else "-"
            for k, (_, f) in zip(keys, heads)] for c in dicts]
  return [h for h, _ in heads], cells, None


def trial_table(rows: List[Dict], ranked: bool = True) -> Table:
  """The table of trials (best first as given): rank (when `ranked`),
  trial id, reward, the costs and budget where a trial has them, and the
  trial's whole config (:func:`_config_columns`). A column with nothing
  to say is left out: one empty ("-") in every row, the seconds when every
  trial took 0.0 s, the budget when no trial took part in early stopping.
  """
  fixed = []  # (header, cell texts, numeric)
  if ranked:
    fixed.append(("rank", [str(i + 1) for i in range(len(rows))], True))
  fixed += [("trial", [str(r["trial_id"]) for r in rows], True),
            ("reward", [_num(r["reward"]) for r in rows], True)]
  metrics = [r.get("metrics") or {} for r in rows]
  for header, key, scale, digits in (
      ("val accuracy", "val_accuracy", 1.0, 4),
      ("multiply-adds (M)", "flops", 1e6, 1),
      ("params (M)", "params", 1e6, 3)):
    cells = [_num(m.get(key), scale, digits) for m in metrics]
    if any(c != "-" for c in cells):
      fixed.append((header, cells, True))
  seconds = [f"{r['seconds']:.1f}" for r in rows]
  if any(s != "0.0" for s in seconds):
    fixed.append(("trial seconds", seconds, True))
  if any(r.get("budget_fraction") is not None for r in rows):
    # Early stopping: "all" says a trial went through every rung.
    fixed.append(("budget trained", [budget_text(r) for r in rows], False))
  headers, config_cells, blocks = _config_columns([r["config"]
                                                   for r in rows])
  columns = [h for h, _, _ in fixed] + headers
  out = [tuple(cells[i] for _, cells, _ in fixed) + tuple(config_cells[i])
         for i in range(len(rows))]
  return Table(columns, out,
               tuple(j for j, (_, _, num) in enumerate(fixed) if num),
               None if blocks is None else len(fixed) + blocks)


def table_rows(rows: List[Dict]) -> List[Tuple[str, ...]]:
  """One tuple of cell texts per trial (:func:`trial_table`'s columns),
  best first as given; the trial's config in the last cells."""
  return trial_table(rows).rows


def _md(text: str) -> str:
  return str(text).replace("|", "\\|")


def markdown(table: Table) -> str:
  """A Table as Markdown (block strings as code)."""
  lines = ["| " + " | ".join(_md(c) for c in table.columns) + " |",
           "|" + "---|" * len(table.columns)]
  for cells in table.rows:
    lines.append("| " + " | ".join(
        f"`{c}`" if j == table.blocks else _md(c)
        for j, c in enumerate(cells)) + " |")
  return "\n".join(lines)


def top_table(rows: List[Dict]) -> str:
  """Markdown table of trials (best first as given)."""
  return markdown(trial_table(rows))


def failed_trials(trials: List[Dict]) -> List[Dict]:
  """The failed trials, by trial id."""
  return sorted((t for t in trials if t["status"] != "ok"),
                key=lambda t: t["trial_id"])


def reason_text(row: Dict, width: int = 200) -> str:
  """A failed trial's reason on one line (its first, shortened)."""
  lines = str(row.get("reason") or "").strip().splitlines()
  text = lines[0] if lines else "(no reason stored)"
  return text if len(text) <= width else text[:width - 3] + "..."


def failed_table(trials: List[Dict], limit: Optional[int] = None) -> Table:
  """The first `limit` failed trials (all with None): trial id, reason,
  config."""
  failed = failed_trials(trials)[:limit]
  headers, cells, blocks = _config_columns([t["config"] for t in failed])
  rows = [(str(t["trial_id"]), reason_text(t)) + tuple(c)
          for t, c in zip(failed, cells)]
  return Table(["trial", "reason"] + headers, rows, (0,),
               None if blocks is None else 2 + blocks)


def failed_section(trials: List[Dict], limit: int = FAILED_LISTED) -> str:
  """Markdown: "Failed trials: N of M" and the first `limit` of them
  (trial id, reason, config); "" when no trial failed."""
  failed = failed_trials(trials)
  if not failed:
    return ""
  head = f"Failed trials: {len(failed)} of {len(trials)}"
  if len(failed) > limit:
    head += f" (the first {limit} listed)"
  return head + "\n\n" + markdown(failed_table(trials, limit))


def trials_markdown(trials: List[Dict], top: int = 10,
                    screened: Sequence[Dict] = ()) -> str:
  """What top_trials.md holds: the top `top` trials, best first, then the
  failed trials with their reasons (when any failed), then the screening
  (when the search screened its proposals)."""
  parts = [top_table(best_first(trials)[:top])]
  failed = failed_section(trials)
  if failed:
    parts.append(failed)
  if screened:
    parts.append(screened_section(screened))
  return "\n\n".join(parts)


# ------------------------------------------------------------- screening
SCREENED_LISTED = 5  # screened-out candidates listed in top_trials.md


def load_screened(out_dir: str) -> List[Dict]:
  """The candidates a search screened (graph_nas.search.screening): every
  one with its cheap score, chosen or not; [] for a search that did not
  screen."""
  path = os.path.join(out_dir, DB_NAME)
  if not os.path.exists(path):
    return []
  with _open_store(path) as store:
    return store.screened()


def screening_summary(screened: Sequence[Dict]) -> Dict:
  """Counts of a search's screening: candidates, trained (chosen),
  screened out, chosen as exploration, the scorers."""
  chosen = [r for r in screened if r["chosen"]]
  return {"candidates": len(screened), "trained": len(chosen),
          "screened out": len(screened) - len(chosen),
          "chosen as exploration": sum(1 for r in chosen if r["explored"]),
          "scorer": ", ".join(sorted({r["scorer"] for r in screened}))}


def screened_table(screened: Sequence[Dict],
                   limit: int = SCREENED_LISTED) -> Table:
  """The best-scored candidates that were screened out (never trials)."""
  out = sorted((r for r in screened if not r["chosen"] and
                r["score"] is not None), key=lambda r: -r["score"])[:limit]
  return Table(["screening", "cheap score", "configuration"],
               [(r["screen_key"], _num(r["score"]), _candidate_text(r))
                for r in out], numeric=(1,))


def _candidate_text(row: Dict) -> str:
  """A screened candidate's config: MnasNet block strings for an image
  child (as the top table shows it), else every key."""
  config = row["config"]
  if not isinstance(config, dict):
    return "-"
  blocks = block_strings(config)
  return " ".join(blocks) if blocks else config_text(config)


def screened_section(screened: Sequence[Dict]) -> str:
  """top_trials.md's screening: the counts, then the best-scored
  candidates screened out."""
  s = screening_summary(screened)
  head = (f"Screening ({s['scorer']}): {s['candidates']} candidates scored, "
          f"{s['trained']} trained ({s['chosen as exploration']} of them "
          f"drawn as exploration), {s['screened out']} screened out (never "
          "trials).")
  table = screened_table(screened)
  if not table.rows:
    return head
  return head + "\n\nThe best-scored candidates screened out:\n\n" + \
      markdown(table)


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
