"""One self-contained HTML page per search output folder.

  python -m graph_nas.report --runs=runs/cifar --html  # runs/cifar/report.html

The page holds the run's summary, the top trials (image children as block
strings), the reward plot, the Pareto plot (runs with a cost), the policy
the controller has learned drawn on the space's graph (graph_nas.dot; needs
the space file and Graphviz) and every setting the search stored. Images
are embedded as base64 PNGs, so the file can be mailed or archived alone.
Whatever cannot be drawn is replaced by a line that says why.
"""

import base64
import datetime
import html
import json
import os
import tempfile
from typing import Dict, List, Optional, Tuple

from absl import logging

from graph_nas.errors import GraphNasError
from graph_nas.report import plots, trials as trials_lib

HTML_NAME = "report.html"
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1280px; padding: 0 16px; color: #222; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 19px; border-bottom: 1px solid #ddd; padding-bottom: 4px;
     margin-top: 32px; }
.sub { color: #666; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: #f3f5f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: Menlo, Consolas, monospace; font-size: 12px; }
td.arch code { display: block; white-space: nowrap; }
img { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; border: 1px solid #eee; padding: 4px; }
.scroll img { max-width: none; }
.note { color: #8a5a00; background: #fff8e6; padding: 6px 10px;
        border-left: 3px solid #e0a800; }
.kv td:first-child { font-weight: bold; white-space: nowrap; }
"""


def _img(png: bytes, alt: str, scroll: bool = False) -> str:
  data = base64.b64encode(png).decode("ascii")
  tag = f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
  return f'<div class="scroll">{tag}</div>' if scroll else tag


def _note(text: str) -> str:
  return f'<p class="note">{html.escape(text)}</p>'


def _table(header: List[str], rows: List[Tuple], num_cols=(),
           arch_col=None) -> str:
  out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>"
                                 for h in header) + "</tr>"]
  for row in rows:
    cells = []
    for j, cell in enumerate(row):
      if j == arch_col:
        parts = str(cell).split(" ") if _looks_like_blocks(cell) else \
            [str(cell)]
        cells.append('<td class="arch">' + "".join(
            f"<code>{html.escape(p)}</code>" for p in parts) + "</td>")
      else:
        cls = ' class="num"' if j in num_cols else ""
        cells.append(f"<td{cls}>{html.escape(str(cell))}</td>")
    out.append("<tr>" + "".join(cells) + "</tr>")
  out.append("</table>")
  return "\n".join(out)


def _looks_like_blocks(text) -> bool:
  parts = str(text).split(" ")
  return all(p.startswith("r") and "_k" in p and "_o" in p for p in parts)


def _kv_table(items: Dict) -> str:
  rows = []
  for k, v in items.items():
    if isinstance(v, float):
      v = f"{v:.6g}"
    elif isinstance(v, (dict, list)):
      v = json.dumps(v, default=str)
    rows.append(f"<tr><td>{html.escape(str(k))}</td>"
                f"<td><code>{html.escape(str(v))}</code></td></tr>")
  return '<table class="kv">' + "".join(rows) + "</table>"


def resolve_space(out_dir: str, space_path: Optional[str] = None):
  """(SearchSpace or None, why not): the space a run searched.

  Tries `space_path`, else the --space the run was launched with (as
  given, then relative to this package's checkout), and checks it against
  the fingerprint in the run's identity."""
  from graph_nas import space as space_lib
  from graph_nas.report import dot
  meta = trials_lib.run_meta(out_dir)
  identity = meta.get("identity") or {}
  candidates = [space_path] if space_path else []
  launched = (meta.get("run_info") or {}).get("space")
  if not space_path and launched:
    candidates += [launched, os.path.join(_PACKAGE_ROOT, launched)]
  path = next((p for p in candidates if p and os.path.exists(p)), None)
  if path is None:
    if space_path:
      return None, f"no such space file: {space_path}"
    return None, ("the run does not say which space file it searched "
                  "(or the file is gone): pass --space")
  try:
    space = space_lib.load(path)
  except GraphNasError as e:
    return None, str(e)
  want = identity.get("space")
  if want and want != dot.space_fingerprint(space):
    return None, (f"{path} is not the space this run searched (it has "
                  "changed since, or is another one): pass --space")
  return space, ""


def policy_png(out_dir: str, space, walks: int = 512) -> Tuple[
    Optional[bytes], str, str]:
  """(PNG bytes or None, DOT text, why not) of the run's policy graph."""
  from graph_nas.report import dot
  text = dot.run_policy_dot(space, out_dir, num_walks=walks)
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "policy.png")
    try:
      dot.render_png(text, path)
    except GraphNasError as e:
      return None, text, str(e)
    with open(path, "rb") as f:
      return f.read(), text, ""


def build_html(out_dir: str, space_path: Optional[str] = None, top: int = 10,
               walks: int = 512, window: int = 20) -> str:
  """The report page of one search output folder, as a string."""
  trials = trials_lib.load_runs([out_dir])[out_dir]
  meta = trials_lib.run_meta(out_dir)
  name = os.path.basename(os.path.normpath(out_dir))
  parts = _head(out_dir, name)
  parts += ["<h2>Summary</h2>", _summary_section(trials)]
  parts += [f"<h2>Top {top} trials</h2>", _top_section(trials, top)]
  parts += ["<h2>Reward</h2>", _reward_section(out_dir, trials, window)]
  parts += ["<h2>Accuracy against cost (Pareto front)</h2>",
            _pareto_section(name, trials, meta)]
  parts += ["<h2>Learned policy on the search space</h2>",
            _policy_section(out_dir, space_path, walks)]
  parts += ["<h2>Settings</h2>", _settings_section(meta)]
  parts.append("</body></html>")
  return "\n".join(parts) + "\n"


def _head(out_dir, name) -> List[str]:
  """The page's head and title lines."""
  now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
  return [
      "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
      f"<title>graph-nas report: {html.escape(name)}</title>",
      f"<style>{_CSS}</style></head><body>",
      f"<h1>Search report: {html.escape(name)}</h1>",
      f'<p class="sub">{html.escape(os.path.abspath(out_dir))} &middot; '
      f"written {now} by graph_nas.report</p>"]


def _summary_section(trials) -> str:
  s = trials_lib.summary(trials)
  best = s["best_reward"]
  return _kv_table({
      "trials": s["trials"], "succeeded": s["ok"], "failed": s["failed"],
      "stopped early": s["stopped_early"],
      "best reward": "-" if best is None else f"{best:.4f}",
      "mean reward": "-" if s["mean_reward"] is None else
      f"{s['mean_reward']:.4f}",
      "time in trials (s)": f"{s['trial_seconds']:.1f}"})


def _top_section(trials, top) -> str:
  ranked = trials_lib.best_first(trials)[:top]
  if not ranked:
    return _note("no trial has succeeded yet")
  columns = trials_lib.COLUMNS
  return _table(list(columns), trials_lib.table_rows(ranked),
                num_cols=(0, 1, 2, 3, 4, 5, 6), arch_col=len(columns) - 1)


def _reward_section(out_dir, trials, window) -> str:
  if not trials:
    return _note("no trials yet")
  return _img(plots.png_bytes(plots.reward_figure({out_dir: trials},
                                                  window)),
              "reward against trials")


def _pareto_section(name, trials, meta) -> str:
  fig = plots.pareto_figure(trials, plots.target_flops_of(meta),
                            f"{name}: validation accuracy against "
                            "multiply-adds")
  if fig is None:
    return _note("no trial has multiply-adds and a validation accuracy (a "
                 "toy run?): no Pareto plot")
  return _img(plots.png_bytes(fig), "Pareto plot")


def _settings_section(meta) -> str:
  """Every setting the search stored, with its identity and timing."""
  settings = dict(meta.get("run_info") or {})
  identity = meta.get("identity") or {}
  settings.update({f"identity: {k}": v for k, v in identity.items()})
  for k, v in (meta.get("last_run_timing") or {}).items():
    settings[f"last run: {k}"] = v
  if meta.get("best_child"):
    bc = dict(meta["best_child"])
    bc.pop("metrics", None)
    settings["best child (retrained)"] = bc
  return (_kv_table(settings) if settings else
          _note("the run stored no settings"))


def _policy_section(out_dir, space_path, walks) -> str:
  space, why = resolve_space(out_dir, space_path)
  if space is None:
    return _note(f"no policy graph: {why}")
  try:
    png, text, why = policy_png(out_dir, space, walks)
  except GraphNasError as e:
    return _note(f"no policy graph: {e}")
  intro = ("<p>Each edge: the probability of that action at its vertex "
           f"under the current controller, averaged over the visits of "
           f"{walks} sampled walks (width and label). Vertices: the share "
           "of sampled walks that visit them. Red: the best trial's path. "
           "An action with many values is one edge, with a strip shaded by "
           "each value's probability.</p>")
  if png is None:
    return (_note(f"no policy graph image: {why}") +
            f"<details><summary>DOT text</summary><pre>{html.escape(text)}"
            "</pre></details>")
  # Fit a graph to the page unless that would shrink its text too much.
  width = int.from_bytes(png[16:20], "big") if png[:4] == b"\x89PNG" else 0
  return intro + _img(png, "policy graph", scroll=width > 1600)


def write_html(out_dir: str, path: Optional[str] = None, **kwargs) -> str:
  """Writes out_dir/report.html (or `path`); returns its path."""
  text = build_html(out_dir, **kwargs)
  path = path or os.path.join(out_dir, HTML_NAME)
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  logging.info("wrote %s", path)
  return path
