"""The shared vocabulary of the space package: limits, edges and walks.

What every other module of ``graph_nas.space`` needs and nothing else: the
size limits, the :class:`Edge` an action expands to, the :class:`Walk` a
sequence of action indices makes, reading a proto ``Value``, and the checks
and quoting of user-given names and values in messages. No imports from
the rest of the package.
"""

import dataclasses
import math
import re
from typing import Any, Optional, Tuple

from graph_nas.protos import search_space_pb2 as pb

# Limits that keep a typo ("stop: 1000000000") from exhausting memory.
MAX_ACTIONS_PER_VERTEX = 100_000
MAX_TOTAL_ACTIONS = 1_000_000
MAX_TABLE_ENTRIES = 20_000_000  # vertices x max actions, the padded tables
# A linear controller takes one LSTM step per slot; a longer chain is of no
# use and takes tens of seconds to build.
MAX_LINEAR_SLOTS = 10_000


@dataclasses.dataclass(frozen=True)
class Edge:
  """One expanded action: an edge of the graph."""
  name: str
  target: int
  key: str
  op: int
  value: Any
  ends_config: bool
  spec: int  # index of the Action message in its vertex (before expansion)


# A walk as algorithms, the queue and the store pass it around: the action
# index taken at each visited vertex. (Walk below is the space's record of
# one, with the vertices it visited.)
Actions = Tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Walk:
  """A walk: the action index taken at each visited vertex."""
  actions: Actions
  vertices: Tuple[int, ...]  # visited vertices, len(actions) + 1
  truncated: bool  # stopped by max_steps before reaching a terminal


def _value(v: pb.Value):
  kind = v.WhichOneof("kind")
  return None if kind is None else getattr(v, kind)


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _bad_text(text: str) -> Optional[str]:
  """Why a name or string value is unusable (control characters), or None."""
  m = _CONTROL_RE.search(text)
  if m:
    return (f"has a control character ({m.group()!r}); names and string "
            "values must be printable")
  return None


def _value_fault(x) -> Optional[str]:
  """Why a value given in the space is unusable, or None."""
  if isinstance(x, float) and not math.isfinite(x):
    return f"{x} is not a finite number"
  if isinstance(x, str):
    bad = _bad_text(x)
    if bad:
      return f"string {x!r} {bad}"
  return None


def _quote(name: str) -> str:
  """A user-given name for a message: 'name', escaped when not printable."""
  return f"'{name}'" if not _bad_text(name) else repr(name)


def _fmt(v):
  if isinstance(v, float):
    return repr(v)
  return str(v)
