"""Draw a search space as Graphviz DOT (and PNG when `dot` is installed),
optionally with the policy a search has learned on it.

  python -m graph_nas.dot --space=protos/select_optimizer_b4.textproto \
      --dot=b4.dot [--png=b4.png] [--linear]

  python -m graph_nas.dot --space=protos/select_optimizer_b4.textproto \
      --runs=runs/select_optimizer_b4 --png=policy.png [--dot=policy.dot]

With --runs, each edge is drawn with its probability under the run's
current controller (loaded from the folder's checkpoint.npz; at each vertex
the action distribution is averaged over the visits of --walks sampled
walks, see graph_nas.report.policy) as pen width and label; the edge's shade is the
share of sampled walks that take it, and the path of the best trial in the
folder's trial store is red. Vertices show the share of sampled walks that
visit them (and, in a loop, how often a walk comes back); vertices that no
sampled walk visits are grey and dashed. A random-search run is drawn with
its uniform policy. The run must have searched this very space (its
fingerprint is checked).

An action with many values (int_values, int_range, ...) expands to one
edge per value. Up to --expand_limit values are drawn as parallel labelled
edges; more are drawn as one edge carrying their summed probability, with a
strip shaded by each value's probability (the best trial's value in red),
the --top_values likeliest values and the best trial's value and rank.
Every edge with a known probability also carries it in a `probability`
attribute (read back by :func:`edge_probabilities`).

Layout: top to bottom (--rankdir=TB, fits a web page) or left to right.

One module (about 350 lines) on purpose: it is one idea, a space drawn
with a policy on it. The three kinds of edge (plain, one per value, one
summarised with its strip) share one set of conventions: the colours,
the pen widths, the `probability` attribute that :func:`edge_probabilities`
reads back. Rendering is the dozen lines that run Graphviz; the policy
itself is graph_nas.report.policy's. The command (`graph-nas-dot`,
`python -m graph_nas.dot`: its flags, loading the space, calling the
functions here) is graph_nas.cli.dot; ``graph_nas.dot`` re-exports every
name here and the command's `run`.
"""

import os
import shutil
import subprocess
from typing import List, Optional, Sequence

from graph_nas import space as space_lib
from graph_nas.errors import GraphNasError


BEST_COLOR = "#d62728"
EDGE_COLOR = "#1f3b73"
UNSEEN_COLOR = "#9a9a9a"


def render_png(dot_text: str, png_path: str) -> None:
  """Renders DOT text to PNG with the Graphviz `dot` program."""
  render(dot_text, png_path, "png")


def render(dot_text: str, path: str, fmt: str = "png") -> None:
  """Renders DOT text with Graphviz `dot` to `path` in format `fmt`."""
  exe = shutil.which("dot")
  if exe is None:
    raise GraphNasError("the Graphviz `dot` program is not installed "
                        "(e.g. `apt-get install graphviz`); DOT text can "
                        "still be written with --dot")
  proc = subprocess.run([exe, f"-T{fmt}", "-o", path], input=dot_text,
                        text=True, capture_output=True, check=False)
  if proc.returncode != 0:
    raise GraphNasError(f"dot failed: {proc.stderr.strip()}")


def _q(text: str) -> str:
  """A DOT double-quoted string ("\\n" sequences in text are kept)."""
  return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace(
      "\\\\n", "\\n").replace("\n", "\\n") + '"'


def _short(value) -> str:
  if isinstance(value, float):
    return f"{value:g}"
  return str(value)


def _attrs(**kw) -> str:
  def fmt(v):
    if isinstance(v, _Html):
      return f"<{v}>"
    return _q(v) if isinstance(v, str) else v
  return "[" + ", ".join(f"{k}={fmt(v)}" for k, v in kw.items()
                         if v is not None) + "]"


def _unseen(label: str) -> str:
  return _attrs(label=label, style="dashed", color=UNSEEN_COLOR,
                fontcolor=UNSEEN_COLOR)


def _width(p: float) -> str:
  return f"{0.6 + 5.4 * p:.2f}"


def _alpha_color(p: float) -> str:
  alpha = int(round(255 * (0.3 + 0.7 * p)))
  return f"{EDGE_COLOR}{alpha:02x}"


def best_path(space, walk: Sequence[int]):
  """{(vertex, action index)} taken by a walk, and its visited vertices."""
  w = space.check_walk(walk)
  return set(zip(w.vertices[:-1], w.actions)), set(w.vertices)


def policy_dot(space, policy=None, best_walk: Optional[Sequence[int]] = None,
               title: Optional[str] = None, expand_limit: int = 6,
               top_values: int = 3, rankdir: str = "TB") -> str:
  """DOT text of a space with a policy's probabilities and a best path.

  Every drawn edge carries its probability in a `probability` attribute
  (summed over the values it stands for; absent where unknown), so the
  edges leaving a visited vertex sum to 1.
  """
  taken, on_path = set(), set()
  if best_walk is not None:
    taken, on_path = best_path(space, best_walk)
  lines = [f"digraph {_q(space.name)} {{",
           f"  rankdir={rankdir}; nodesep=0.3; ranksep=0.5;",
           '  graph [fontname="Helvetica", fontsize=14, labelloc=t];',
           '  node [shape=box, style="rounded", fontname="Helvetica", '
           'fontsize=11];',
           '  edge [fontname="Helvetica", fontsize=9, arrowsize=0.6];']
  if title:
    lines.append(f"  label={_q(title)};")
  for v, name in enumerate(space.vertex_names):
    label = name
    attrs = {}
    if policy is not None:
      share = float(policy.visit_share[v])
      label += f"\\nvisited {100 * share:.0f}%"
      per_walk = policy.visits[v] / max(share * policy.num_walks, 1)
      if per_walk > 1.05:  # a loop: say how often a walk comes back
        label += f", {per_walk:.1f}x per walk"
      if share == 0:
        attrs.update(color=UNSEEN_COLOR, fontcolor=UNSEEN_COLOR,
                     style="rounded,dashed")
    if space.terminal[v]:
      attrs["shape"] = "doublecircle"
      if policy is None or policy.visit_share[v] >= 1:
        label = name
    if v == space.start:
      attrs["penwidth"] = 2
    if v in on_path:
      attrs.update(color=BEST_COLOR, penwidth=2.5)
    lines.append(f"  {_q(name)} {_attrs(label=label, **attrs)};")
  for v, vertex in enumerate(space.proto.vertices):
    probs = None if policy is None else policy.probs[v]
    share = 1.0 if policy is None else float(policy.visit_share[v])
    edges = space.edges[v]
    for spec, action in enumerate(vertex.actions):
      idx = [i for i, e in enumerate(edges) if e.spec == spec]
      if not idx:
        continue
      if policy is None:
        lines.append(_plain_edge(space, v, spec, idx))
      elif len(idx) <= expand_limit:
        for i in idx:
          lines.append(_one_edge(space, v, i, len(idx) > 1, probs,
                                 (v, i) in taken, share))
      else:
        lines.append(_group_edge(space, v, idx, action, probs, taken,
                                 top_values, share))
  lines.append("}")
  return "\n".join(lines) + "\n"


def _plain_edge(space, v, spec, idx):
  """The space alone: one edge per Action message (as SearchSpace.to_dot)."""
  a = space.proto.vertices[v].actions[spec]
  e0, e1 = space.edges[v][idx[0]], space.edges[v][idx[-1]]
  label = a.name + (f"\\n{a.key}" if a.key else "")
  if len(idx) > 1:
    label += f" in {{{_short(e0.value)}..{_short(e1.value)}}} ({len(idx)})"
  elif a.HasField("value") and a.key:
    from graph_nas.protos import search_space_pb2 as pb
    sym = {pb.Action.SET: "=", pb.Action.ADD: "+=",
           pb.Action.APPEND: "append"}[a.op]
    label += f" {sym} {_short(e0.value)}"
  return (f"  {_q(space.vertex_names[v])} -> "
          f"{_q(space.vertex_names[e0.target])} {_attrs(label=label)};")


def _one_edge(space, v, i, show_value, probs, best, share=1.0):
  e = space.edges[v][i]
  name = e.name if show_value else e.name.split("=")[0]
  src, dst = _q(space.vertex_names[v]), _q(space.vertex_names[e.target])
  if probs is None:
    return f"  {src} -> {dst} {_unseen(f'  {name}  ')};"
  p = float(probs[i])
  attrs = dict(label=f"  {name}  {p:.2f}  ", penwidth=_width(p),
               color=BEST_COLOR if best else _alpha_color(p * share),
               fontcolor=BEST_COLOR if best else "black",
               tooltip=f"{space.vertex_names[v]}: {e.name} p={p:.4f}",
               probability=f"{p:.6f}")
  return f"  {src} -> {dst} {_attrs(**attrs)};"


STRIP_CELLS = 200  # most cells of a summarised edge's probability strip
STRIP_WIDTH = 200  # its width in points


def _html(text) -> str:
  return (str(text).replace("&", "&amp;").replace("<", "&lt;")
          .replace(">", "&gt;"))


def _blend(frac: float) -> str:
  """White (0) to EDGE_COLOR (1)."""
  frac = min(max(frac, 0.0), 1.0)
  rgb = [int(EDGE_COLOR[i:i + 2], 16) for i in (1, 3, 5)]
  return "#" + "".join(f"{int(round(255 + (c - 255) * frac)):02x}"
                       for c in rgb)


def _strip(values, best_cell: Optional[int]) -> str:
  """An HTML-like table row of cells shaded by probability (a heat strip):
  one cell per value, or per bin of values when there are many."""
  n = len(values)
  bins = min(n, STRIP_CELLS)
  edges = [round(i * n / bins) for i in range(bins + 1)]
  mass = [sum(values[edges[i]:edges[i + 1]]) for i in range(bins)]
  # Shade relative to the likeliest bin, but never darker than 5x uniform:
  # a flat distribution stays pale.
  top = max(max(mass), 5.0 * sum(mass) / bins) or 1.0
  width = max(1, STRIP_WIDTH // bins)
  cells = []
  for i, m in enumerate(mass):
    color = BEST_COLOR if best_cell is not None and \
        edges[i] <= best_cell < edges[i + 1] else _blend(m / top)
    cells.append(f'<TD WIDTH="{width}" HEIGHT="9" FIXEDSIZE="TRUE" '
                 f'BGCOLOR="{color}"></TD>')
  return ('<TABLE BORDER="1" COLOR="#bbbbbb" CELLBORDER="0" CELLSPACING="0" '
          'CELLPADDING="0"><TR>' + "".join(cells) + "</TR></TABLE>")


class _Html(str):
  """An HTML-like DOT label (written between < and >, not quoted)."""


def _group_edge(space, v, idx, action, probs, taken, top_values,
                share=1.0):
  edges = space.edges[v]
  src = _q(space.vertex_names[v])
  dst = _q(space.vertex_names[edges[idx[0]].target])
  first, last = edges[idx[0]].value, edges[idx[-1]].value
  head = (f"{action.name} in {_short(first)}..{_short(last)} "
          f"({len(idx)} values)")
  best = [i for i in idx if (v, i) in taken]
  if probs is None:
    return f"  {src} -> {dst} {_unseen(head)};"
  p = float(sum(probs[i] for i in idx))
  ranked = sorted(idx, key=lambda i: -probs[i])
  top = ", ".join(f"{_short(edges[i].value)}: {probs[i]:.2f}"
                  for i in ranked[:top_values])
  color = BEST_COLOR if best else "black"
  rows = [f"{head}  {p:.2f}", None, f"likeliest {top}"]
  if best:
    b = best[0]
    rows.append(f"best trial: {_short(edges[b].value)} "
                f"(p {probs[b]:.2f}, rank {ranked.index(b) + 1})")
  cells = []
  for r in rows:
    if r is None:
      cells.append("<TR><TD>" + _strip([float(probs[i]) for i in idx],
                                       idx.index(best[0]) if best else None)
                   + "</TD></TR>")
    else:
      cells.append(f'<TR><TD><FONT COLOR="{color}">{_html(r)}</FONT>'
                   "</TD></TR>")
  label = _Html('<TABLE BORDER="0" CELLSPACING="1" CELLPADDING="0">'
                + "".join(cells) + "</TABLE>")
  tooltip = "; ".join(f"{_short(edges[i].value)}={probs[i]:.4f}"
                      for i in ranked[:10])
  attrs = dict(label=label, penwidth=_width(p),
               color=BEST_COLOR if best else _alpha_color(p * share),
               tooltip=f"{space.vertex_names[v]}: {tooltip}"
               + (" ..." if len(ranked) > 10 else ""),
               probability=f"{p:.6f}")
  return f"  {src} -> {dst} {_attrs(**attrs)};"


def run_policy_dot(space, out_dir: str, num_walks: int = 512, seed: int = 0,
                   expand_limit: int = 6, top_values: int = 3,
                   rankdir: str = "TB") -> str:
  """DOT text of the policy and best trial of a search output folder."""
  from graph_nas.report import policy as policy_lib
  from graph_nas.search.store import TrialStore
  from graph_nas.search.run_folder import DB_NAME
  db = os.path.join(out_dir, DB_NAME)
  if not os.path.exists(db):
    raise GraphNasError(f"no {DB_NAME} here: not a search output folder",
                        source=out_dir)
  with TrialStore(db, read_only=True) as store:
    identity = store.get_meta("identity") or {}
    best = store.best(1)
    ok = len(store.trials("ok"))
    # A searcher without a learned policy (evolution, random): what its
    # best trials chose, not a uniform policy that says nothing.
    top = store.best(max(10, ok // 5))
  want = identity.get("space")
  if want and want != space_fingerprint(space):
    raise GraphNasError(
        f"this folder searched space '{identity.get('space_name')}' "
        f"(fingerprint {want}), not {space.source} "
        f"({space_fingerprint(space)}); pass the space it was run with"
        + ("" if isinstance(space, space_lib.LinearTwin) else
           " (with --linear if it searched the linear twin)"),
        source=out_dir)
  from graph_nas.search.run_folder import CHECKPOINT_NAME
  ckpt = os.path.join(out_dir, CHECKPOINT_NAME)
  learned = (os.path.exists(ckpt) and
             policy_lib.checkpoint_kind(ckpt)[1])
  best_walk = best[0]["walk"] if best else None
  if learned or not top:
    pol = policy_lib.policy_of_run(out_dir, space, num_walks, seed)
    title = (f"{space.name}: policy of the {pol.source}\nedge width and "
             "label: p(action | vertex)\nshade: share of walks taking it")
  else:
    pol = policy_lib.trials_policy(space, [t["walk"] for t in top],
                                   f"{len(top)} best trials")
    title = (f"{space.name}: the actions of the {len(top)} best trials (the "
             "searcher has no learned policy)\nedge width and label: share "
             "of their visits taking it")
  if best:
    title += (f"\nred: path of the best trial, #{best[0]['trial_id']} "
              f"(reward {best[0]['reward']:.4f})")
  return policy_dot(space, pol, best_walk, title=title,
                    expand_limit=expand_limit, top_values=top_values,
                    rankdir=rankdir)


# The fingerprint a search stores in its identity (said once, in space).
space_fingerprint = space_lib.fingerprint


def edge_probabilities(dot_text: str) -> List[tuple]:
  """(source, target, probability) of every edge of policy_dot's output."""
  import re
  out = []
  pat = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)" \[(.*)\];'
                   r'\s*$')
  for line in dot_text.splitlines():
    m = pat.match(line)
    if not m:
      continue
    p = re.search(r"probability=\"?([0-9.eE+-]+)", m.group(3))
    out.append((m.group(1), m.group(2), float(p.group(1)) if p else None))
  return out
