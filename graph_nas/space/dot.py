"""DOT output of a space: its graph for Graphviz.

One DOT node per vertex (terminals double circles, the start drawn bold)
and one DOT edge per Action message: an action's values (or range) are
shown in its label rather than as one arrow each.
"""

from graph_nas.protos import search_space_pb2 as pb
from graph_nas.space.base import _fmt, _value


def _dot_quote(text: str) -> str:
  """A DOT double-quoted string (quotes and backslashes escaped)."""
  return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(space) -> str:
  """Graphviz DOT of a SearchSpace (see the module doc)."""
  q = _dot_quote
  lines = [f"digraph {q(space.name)} {{", "  rankdir=LR;",
           '  node [shape=box, style=rounded, fontname="Helvetica"];',
           '  edge [fontname="Helvetica", fontsize=10];']
  for i, name in enumerate(space.vertex_names):
    attrs = []
    if space.terminal[i]:
      attrs.append("shape=doublecircle")
    if i == space.start:
      attrs.append("penwidth=2")
    lines.append(f'  {q(name)} [{", ".join(attrs)}];' if attrs
                 else f"  {q(name)};")
  for i, v in enumerate(space.proto.vertices):
    for spec, a in enumerate(v.actions):
      label = _edge_label(a, [e for e in space.edges[i] if e.spec == spec])
      # Names and values hold no control characters (validated): the
      # only newline is the one put there, written as DOT's "\n".
      text = _dot_quote(label)[1:-1].replace("\n", "\\n")
      lines.append(f'  {q(v.name)} -> {q(a.target)} [label="{text}"];')
  lines.append("}")
  return "\n".join(lines) + "\n"


def _edge_label(a: pb.Action, expanded) -> str:
  """The label of action `a` (its edges: `expanded`): name, key, values."""
  label = a.name
  if a.key:
    label += "\n" + a.key
  if len(expanded) > 1:
    label += (f" in {{{_fmt(expanded[0].value)}.."
              f"{_fmt(expanded[-1].value)}}} ({len(expanded)}"
              f"{', log scale' if a.float_range.log else ''})")
  elif a.HasField("value"):
    sym = {pb.Action.SET: "=", pb.Action.ADD: "+=",
           pb.Action.APPEND: "append"}[a.op]
    label += f" {sym} {_fmt(_value(a.value))}"
  if a.max_taken:
    label += f"\n(at most {a.max_taken} time{'s' * (a.max_taken != 1)})"
  return label
