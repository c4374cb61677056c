"""One self-contained HTML page per search output folder.

  python -m graph_nas.report --runs=runs/cifar --html  # runs/cifar/report.html

The page holds the run's summary, the top trials with their whole configs
(image children as block strings), the failed trials with their reasons,
the reward plot, the Pareto plot (only for a run whose trials have a
cost), the policy drawn on the space's graph (graph_nas.dot; needs the
space and Graphviz) and the settings that applied to the run. The policy
is the controller's (pqt, reinforce); a search without one (evolution,
random) shows instead how often its best trials took each action. Images
are embedded as base64 PNGs, so the file can be mailed or archived alone.
Whatever cannot be drawn is replaced by a line that says why; a section
with nothing to say for the run (a toy run's Pareto plot) is left out.
Trials are named by their id in the trial store everywhere, as in the log
and TensorBoard.
"""

import base64
import datetime
import html
import json
import math
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


def _table(table: "trials_lib.Table") -> str:
  """A trials_lib.Table as HTML (block strings one per line)."""
  out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>"
                                 for h in table.columns) + "</tr>"]
  for row in table.rows:
    cells = []
    for j, cell in enumerate(row):
      if j == table.blocks:
        cells.append('<td class="arch">' + "".join(
            f"<code>{html.escape(p)}</code>" for p in str(cell).split(" "))
                     + "</td>")
      else:
        cls = ' class="num"' if j in table.numeric else ""
        cells.append(f"<td{cls}>{html.escape(str(cell))}</td>")
    out.append("<tr>" + "".join(cells) + "</tr>")
  out.append("</table>")
  return "\n".join(out)


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


def resolve_space(out_dir: str, space_path: Optional[str] = None,
                  space=None):
  """(SearchSpace or None, why not): the space a run searched.

  Takes `space` (a SearchSpace or an api.SpaceBuilder: a space built in
  Python, which a run cannot name), else tries `space_path`, else the
  --space the run was launched with (as given, then relative to this
  package's checkout); checks it against the fingerprint in the run's
  identity."""
  from graph_nas import space as space_lib
  from graph_nas.report import dot
  meta = trials_lib.run_meta(out_dir)
  identity = meta.get("identity") or {}
  want = identity.get("space")
  if space is not None:
    space = space.build() if hasattr(space, "build") else space
    if want and want != dot.space_fingerprint(space):
      return None, (f"space {space.name!r} is not the space this run "
                    "searched")
    return space, ""
  candidates = [space_path] if space_path else []
  launched = (meta.get("run_info") or {}).get("space")
  if not space_path and launched:
    candidates += [launched, os.path.join(_PACKAGE_ROOT, launched)]
  path = next((p for p in candidates if p and os.path.exists(p)), None)
  if path is None:
    if space_path:
      return None, f"no such space file: {space_path}"
    if launched == "<python>":
      return None, ("the run searched a space built in Python, which it "
                    "cannot name: pass it (build_html(..., space=...)) or "
                    "its textproto (--space)")
    return None, ("the run does not say which space file it searched "
                  "(or the file is gone): pass --space")
  try:
    space = space_lib.load(path)
  except GraphNasError as e:
    return None, str(e)
  if want and want != dot.space_fingerprint(space):
    return None, (f"{path} is not the space this run searched (it has "
                  "changed since, or is another one): pass --space")
  return space, ""


def policy_png(out_dir: str, space, walks: int = 512) -> Tuple[
    Optional[bytes], str, str]:
  """(PNG bytes or None, DOT text, why not) of the run's policy graph."""
  from graph_nas.report import dot
  return _render(dot.run_policy_dot(space, out_dir, num_walks=walks))


def _render(text: str) -> Tuple[Optional[bytes], str, str]:
  """(PNG bytes or None, the DOT text, why not) of DOT text."""
  from graph_nas.report import dot
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "policy.png")
    try:
      dot.render_png(text, path)
    except GraphNasError as e:
      return None, text, str(e)
    with open(path, "rb") as f:
      return f.read(), text, ""


def build_html(out_dir: str, space_path: Optional[str] = None, top: int = 10,
               walks: int = 512, window: int = 20, space=None) -> str:
  """The report page of one search output folder, as a string.

  space: the SearchSpace (or api.SpaceBuilder) searched, for the policy
  graph of a space built in Python; else `space_path` or the space file
  the run was launched with (:func:`resolve_space`)."""
  trials = trials_lib.load_runs([out_dir])[out_dir]
  meta = trials_lib.run_meta(out_dir)
  name = os.path.basename(os.path.normpath(out_dir))
  parts = _head(out_dir, name)
  parts += ["<h2>Summary</h2>", _summary_section(trials, meta)]
  parts += [f"<h2>Top {top} trials</h2>", _top_section(trials, top)]
  failed = trials_lib.failed_trials(trials)
  if failed:
    parts += [f"<h2>Failed trials ({len(failed)} of {len(trials)})</h2>",
              _failed_section(trials)]
  screened = trials_lib.load_screened(out_dir)
  if screened:
    parts += ["<h2>Screening</h2>", _screened_section(screened)]
  parts += ["<h2>Reward</h2>", _reward_section(out_dir, trials, window)]
  pareto = _pareto_section(name, trials, meta)
  if pareto:
    parts += ["<h2>Accuracy against cost (Pareto front)</h2>", pareto]
  heading, body = _policy_section(out_dir, trials, space_path, space, walks)
  parts += [f"<h2>{html.escape(heading)}</h2>", body]
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


def _summary_section(trials, meta) -> str:
  s = trials_lib.summary(trials)
  best = s["best_reward"]
  items = {"trials": s["trials"], "succeeded": s["ok"], "failed": s["failed"]}
  if s["cached"]:
    items["reused an earlier result"] = s["cached"]
  if s["stopped_early"] or (meta.get("identity") or {}).get("rungs"):
    items["stopped early"] = s["stopped_early"]
  items.update({
      "best reward": "-" if best is None else f"{best:.4f}",
      "mean reward": "-" if s["mean_reward"] is None else
      f"{s['mean_reward']:.4f}",
      "time in trials (s)": f"{s['trial_seconds']:.1f}"})
  return _kv_table(items)


def _top_section(trials, top) -> str:
  ranked = trials_lib.best_first(trials)[:top]
  if not ranked:
    return _note("no trial has succeeded yet")
  return ("<p>Each trial's whole configuration; trial: its id in the trial "
          "store, the log and TensorBoard.</p>" +
          _table(trials_lib.trial_table(ranked)))


FAILED_SHOWN = 50  # failed trials listed on the page


def _failed_section(trials) -> str:
  """The failed trials: id, reason and config, each traceback folded."""
  failed = trials_lib.failed_trials(trials)
  parts = [_table(trials_lib.failed_table(trials, FAILED_SHOWN))]
  if len(failed) > FAILED_SHOWN:
    parts.append(f"<p>and {len(failed) - FAILED_SHOWN} more (the trial "
                 "store holds them all).</p>")
  for t in failed[:FAILED_SHOWN]:
    tb = (t.get("metrics") or {}).get("traceback")
    reason = str(t.get("reason") or "")
    detail = tb or (reason if "\n" in reason.strip() else "")
    if detail:
      parts.append(f"<details><summary>trial {t['trial_id']}: the whole "
                   f"error</summary><pre>{html.escape(str(detail))}</pre>"
                   "</details>")
  return "\n".join(parts)


SCREENED_SHOWN = 20  # screened-out candidates listed on the page


def _screened_section(screened) -> str:
  """The screening's counts and its best-scored screened-out candidates."""
  parts = ["<p>Each trial was picked from several candidates by a cheap "
           "score (graph_nas.search.screening); the candidates screened out "
           "were never trained and are not trials.</p>",
           _kv_table(trials_lib.screening_summary(screened))]
  table = trials_lib.screened_table(screened, SCREENED_SHOWN)
  if table.rows:
    parts += ["<p>The best-scored candidates screened out:</p>",
              _table(table)]
  return "\n".join(parts)


def _reward_section(out_dir, trials, window) -> str:
  if not trials:
    return _note("no trials yet")
  return _img(plots.png_bytes(plots.reward_figure({out_dir: trials},
                                                  window)),
              "reward against trials")


def _pareto_section(name, trials, meta) -> str:
  """The Pareto plot, or "" for a run whose trials have no cost."""
  fig = plots.pareto_figure(trials, plots.target_flops_of(meta),
                            f"{name}: validation accuracy against "
                            "multiply-adds")
  if fig is None:
    return ""
  return _img(plots.png_bytes(fig), "Pareto plot")


def _applies(name, run_info) -> bool:
  """Whether a recorded setting had an effect in this run: not one that
  applies only with another setting's other values (the controller's
  settings in an evolution run, graph_nas.search.settings' `only`)."""
  from graph_nas.search import settings as settings_lib
  for cls in settings_lib.SETTINGS_CLASSES:
    opt = settings_lib.options(cls).get(name)
    if opt is not None and opt.only:
      other, values = opt.only
      return other not in run_info or run_info[other] in values
  return True


def _settings_section(meta) -> str:
  """The settings that applied to the run, its identity and timing."""
  info = meta.get("run_info") or {}
  identity = meta.get("identity") or {}
  settings = {k: v for k, v in info.items() if _applies(k, info)}
  if identity.get("rungs") == [] and str(info.get("rungs", "none")) != \
      "none":
    # Set, but the evaluator does not report as it trains: no early stop.
    settings["rungs"] = (f"none applied (set {info['rungs']}, but the "
                         "evaluator does not report as it trains)")
    settings.pop("eta", None)
  elif str(info.get("rungs")) == "none":
    settings.pop("eta", None)
  for k, v in identity.items():
    if k in ("rungs", "eta") or (k in info and info[k] == v):
      continue  # said above
    settings[f"identity: {k}"] = v
  for k, v in (meta.get("last_run_timing") or {}).items():
    settings[f"last run: {k}"] = v
  if meta.get("best_child"):
    bc = dict(meta["best_child"])
    bc.pop("metrics", None)
    settings["best child (retrained)"] = bc
  return (_kv_table(settings) if settings else
          _note("the run stored no settings"))


def best_trials_count(num_ok: int) -> int:
  """How many best trials a search without a policy is summarised by:
  the best fifth of the successful trials, at least 10 (all, if fewer)."""
  return min(num_ok, max(10, math.ceil(num_ok / 5)))


def _policy_section(out_dir, trials, space_path, space, walks
                    ) -> Tuple[str, str]:
  """(heading, body): the controller's policy on the space's graph, or
  for a search without one what its best trials chose."""
  from graph_nas.report import policy as policy_lib
  from graph_nas.search.run_folder import CHECKPOINT_NAME
  heading = "Learned policy on the search space"
  try:
    name, learned = policy_lib.checkpoint_kind(
        os.path.join(out_dir, CHECKPOINT_NAME))
  except GraphNasError as e:
    return heading, _note(f"no policy graph: {e}")
  space, why = resolve_space(out_dir, space_path, space)
  if not learned:
    return _best_trials_policy(space, why, trials, name)
  if space is None:
    return heading, _note(f"no policy graph: {why}")
  try:
    png, text, why = policy_png(out_dir, space, walks)
  except GraphNasError as e:
    return heading, _note(f"no policy graph: {e}")
  intro = ("<p>Each edge: the probability of that action at its vertex "
           f"under the current controller, averaged over the visits of "
           f"{walks} sampled walks (width and label). Vertices: the share "
           "of sampled walks that visit them. Red: the best trial's path. "
           "An action with many values is one edge, with a strip shaded by "
           "each value's probability.</p>")
  return heading, _graph(png, text, why, intro)


def _best_trials_policy(space, why, trials, name) -> Tuple[str, str]:
  """A search without a learned policy (evolution, random): how often its
  best trials took each action, drawn on the space's graph (None: `why`
  not)."""
  from graph_nas.report import dot, policy as policy_lib
  heading = "What the best trials chose"
  if space is None:
    return heading, _note(f"{name} search: no learned policy; no graph of "
                          f"its best trials: {why}")
  ranked = trials_lib.best_first(trials)
  if not ranked:
    return heading, _note("no trial has succeeded yet")
  k = best_trials_count(len(ranked))
  best = ranked[0]
  try:
    pol = policy_lib.trials_policy(space, [t["walk"] for t in ranked[:k]],
                                   f"{k} best trials")
  except GraphNasError as e:
    return heading, _note(f"no graph of the best trials: {e}")
  title = (f"{space.name}: the actions of the {k} best trials\n"
           "edge width and label: share of these trials' visits to the "
           "vertex that took it\nred: path of the best trial, "
           f"#{best['trial_id']} (reward {best['reward']:.4f})")
  png, text, why = _render(dot.policy_dot(space, pol, best["walk"],
                                          title=title))
  article = "An" if name[:1].lower() in "aeiou" else "A"
  intro = (f"<p>{article} {html.escape(name)} search learns no policy: what "
           "it found is drawn instead. Each edge: the share of the visits "
           f"that the {k} best trials (of {len(ranked)} that succeeded) "
           "made to its vertex that took that action (width and label). "
           "Vertices: the share of these trials that visit them. Red: the "
           "best trial's path.</p>")
  return heading, _graph(png, text, why, intro)


def _graph(png, text, why, intro) -> str:
  """A rendered graph after its intro, or why not and its DOT text."""
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
