"""Line-number recovery: where in the textproto a vertex, action or default is.

A parsed proto keeps no line numbers, so an error found after parsing is
mapped back to the source text here, best effort: when the text's
``vertices {`` (``actions {``, ``defaults {``) blocks can be counted one per
message, by counting them; otherwise by searching for ``name: "..."``.
:class:`SourceLines` also makes the :class:`GraphNasError` that carries the
line it found.
"""

import re

from graph_nas.errors import GraphNasError
from graph_nas.protos import search_space_pb2 as pb

# A string (kept, it may hold '#') or a comment (dropped).
_STRING_OR_COMMENT = re.compile(
    r'("(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')|#[^\n]*')


class SourceLines:
  """Lines of a space's messages in its source text (None when unknown)."""

  def __init__(self, proto: pb.SearchSpace, source: str, text=None):
    self.proto = proto
    self.source = source
    self.text = text
    self._clean_text = None  # the text without comments, made when needed

  def field_lines(self, field):
    """(offset, line) of each top-level-or-nested `field {` in the text, in
    order, with comments dropped (strings kept); [] without text."""
    if not self.text:
      return []
    if self._clean_text is None:
      self._clean_text = _STRING_OR_COMMENT.sub(lambda m: m.group(1) or "",
                                                self.text)
    text = self._clean_text
    starts = [m.start() for m in
              re.finditer(r"\b%s\s*:?\s*[{<]" % field, text)]
    return [(pos, text.count("\n", 0, pos) + 1) for pos in starts]

  def line_of(self, vertex=None, action=None, vi=None, spec=None):
    """Best-effort line number of a vertex / action in the source text."""
    if not self.text or vertex is None:
      return None
    verts = self.field_lines("vertices")
    if vi is not None and len(verts) == len(self.proto.vertices):
      # One `vertices {` per vertex: count them (names may repeat).
      line = verts[vi][1]
      if spec is None:
        return line
      return self.action_line(vi, spec) or line
    return self._searched_line(vertex, action)

  def _searched_line(self, vertex, action):
    """The line of the first `name: "vertex"`, then of the first
    `name: "action"` after it (else the vertex's line)."""
    lines = self.text.splitlines()
    pat_v = re.compile(r'name\s*:\s*"%s"' % re.escape(vertex))
    start = None
    for i, line in enumerate(lines):
      if pat_v.search(line):
        start = i
        break
    if start is None:
      return None
    if action is None:
      return start + 1
    pat_a = re.compile(r'name\s*:\s*"%s"' % re.escape(action))
    for i in range(start + 1, len(lines)):
      if pat_a.search(lines[i]):
        return i + 1
    return start + 1

  def action_line(self, vi, spec):
    """The line of action `spec` of vertex `vi` when the text's `vertices`
    and `actions` blocks can be counted (else None: no guess)."""
    verts = self.field_lines("vertices")
    if not verts or len(verts) != len(self.proto.vertices):
      return None
    pos = verts[vi][0]
    end = verts[vi + 1][0] if vi + 1 < len(verts) else None
    acts = [l for p, l in self.field_lines("actions")
            if p > pos and (end is None or p < end)]
    if len(acts) != len(self.proto.vertices[vi].actions):
      return None
    return acts[spec]

  def default_line(self, i):
    """The line of default #i when the `defaults` blocks can be counted."""
    lines = self.field_lines("defaults")
    return lines[i][1] if len(lines) == len(self.proto.defaults) else None

  def error(self, message, vertex=None, action=None, vi=None, spec=None):
    """A GraphNasError naming the file, line, vertex and action."""
    return GraphNasError(message, source=self.source,
                         line=self.line_of(vertex, action, vi, spec),
                         vertex=vertex, action=action)

  def default_error(self, message, i):
    """A GraphNasError about default #i, with its line when known."""
    return GraphNasError(f"defaults: {message}", source=self.source,
                         line=self.default_line(i))
