"""Config keys and the config a walk builds.

A config key names a place in the (JSON-able) config: names joined by '.',
each optionally indexed like ``layers[-1]``. This module parses and formats
keys (:func:`parse_key`, :func:`format_path`), reads a value at a key path
(:func:`get_path`) and applies one edge's operation -- SET, APPEND or ADD --
to a config in place (:func:`apply_edge`).
"""

import copy
import math
import re
from typing import Any, List, Sequence, Tuple

from graph_nas.errors import GraphNasError
from graph_nas.protos import search_space_pb2 as pb
from graph_nas.space.base import Edge

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[-?\d+\])*"
                     r"(\.[A-Za-z_][A-Za-z0-9_]*(\[-?\d+\])*)*$")
_TOKEN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(-?\d+)\]")


def parse_key(key: str) -> List[Any]:
  """'layers[-1].kernel' -> ['layers', -1, 'kernel'] (str keys, int idx)."""
  if not _KEY_RE.match(key):
    raise ValueError(f"bad config key {key!r}: expected names joined by '.', "
                     "each optionally indexed like name[-1]")
  out = []
  for name, idx in _TOKEN_RE.findall(key):
    out.append(name if name else int(idx))
  return out


def format_path(path: Sequence[Any]) -> str:
  """['layers', -1, 'kernel'] -> 'layers[-1].kernel' (parse_key's inverse)."""
  out = ""
  for tok in path:
    if isinstance(tok, int):
      out += f"[{tok}]"
    else:
      out += ("." if out else "") + tok
  return out


def _schema(path: Sequence[Any]) -> Tuple[Any, ...]:
  """A key path with its list indexes wildcarded: ('layers', None, 'k')."""
  return tuple(None if isinstance(t, int) else t for t in path)


def get_path(config, path: Sequence[Any]):
  """Returns the value at path, or raises KeyError/IndexError/TypeError."""
  node = config
  for tok in path:
    node = node[tok]
  return node


def _container(config, path, where):
  """Walks to the parent of path[-1], creating dicts for missing names."""
  node = config
  for i, tok in enumerate(path[:-1]):
    nxt = path[i + 1]
    if isinstance(tok, int):
      if not isinstance(node, list) or not -len(node) <= tok < len(node):
        raise GraphNasError(f"config key: no element [{tok}] in the list "
                            f"at this point of the walk (add an APPEND action "
                            f"before it)", **where)
      node = node[tok]
    else:
      if not isinstance(node, dict):
        raise GraphNasError(f"config key: '{tok}' is set on a non-dict",
                            **where)
      if tok not in node:
        if isinstance(nxt, int):
          raise GraphNasError(f"config key: list '{tok}' does not exist yet "
                              "(add an APPEND action before it)", **where)
        node[tok] = {}
      node = node[tok]
  return node


def apply_edge(config: dict, edge: Edge, where: dict) -> None:
  """Applies one action's operation to config in place."""
  if not edge.key:
    return
  path = parse_key(edge.key)
  parent = _container(config, path, where)
  last = path[-1]
  if isinstance(last, int):
    if not isinstance(parent, list) or not -len(parent) <= last < len(parent):
      raise GraphNasError(f"config key '{edge.key}': no element [{last}]",
                          **where)
  elif not isinstance(parent, dict):
    raise GraphNasError(f"config key '{edge.key}': parent is not a dict",
                        **where)
  if edge.op == pb.Action.SET:
    parent[last] = copy.deepcopy(edge.value)
  elif edge.op == pb.Action.APPEND:
    _append(parent, last, edge, where)
  elif edge.op == pb.Action.ADD:
    _add(parent, last, edge, where)


def _append(parent, last, edge: Edge, where: dict) -> None:
  """APPEND: a new element (the edge's value, else {}) at parent[last]."""
  if isinstance(last, str) and last not in parent:
    parent[last] = []
  target = parent[last]
  if not isinstance(target, list):
    raise GraphNasError(f"config key '{edge.key}': APPEND to a non-list",
                        **where)
  target.append({} if edge.value is None else copy.deepcopy(edge.value))


def _add(parent, last, edge: Edge, where: dict) -> None:
  """ADD: parent[last] (0 when missing) plus the edge's value."""
  current = parent.get(last, 0) if isinstance(parent, dict) else parent[last]
  if isinstance(current, bool) or not isinstance(current, (int, float)):
    raise GraphNasError(f"config key '{edge.key}': ADD to a non-number",
                        **where)
  result = current + edge.value
  if isinstance(result, float) and not math.isfinite(result):
    raise GraphNasError(f"config key '{edge.key}': ADD gives {result} "
                        f"({current!r} + {edge.value!r})", **where)
  parent[last] = result
