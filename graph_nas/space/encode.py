"""From a config back to a walk: which walk of a space builds a config.

`walk_of(space, config)` finds a walk whose decoded config equals `config`
(a warm start names an architecture by its config: graph_nas.study's
enqueue). It searches the walks depth first from the start vertex, in each
vertex's action order, and prunes a partial walk as soon as what it built
cannot become `config`: a key the config lacks, a list longer than the
config's, or a value set by the walk that differs from the config's (a
value still at the space's default may be set later; a key some action
ADDs to may still change). States that failed are remembered (vertex,
config so far, whether the config is frozen, steps left), so an inactive
vertex's actions, which all build the same, are tried once.

A config that no walk builds is a GraphNasError naming the decision where
the deepest attempt ran out of fitting actions: the vertex, the decisions
before it, and the actions it has.
"""

import copy
import json
import sys
from typing import Any, Dict, Optional, Sequence, Tuple

from graph_nas.errors import GraphNasError
from graph_nas.protos import search_space_pb2 as pb
from graph_nas.space.config import apply_edge, parse_key


def _canonical(config) -> str:
  return json.dumps(config, sort_keys=True)


def walk_of(space, config: Dict[str, Any]) -> Tuple[int, ...]:
  """The action indices of a walk of `space` that decodes to `config`.

  Raises:
    GraphNasError: no walk builds `config` (naming the first decision that
      does not fit), or `config` is not a JSON-able dict.
  """
  if not isinstance(config, dict):
    raise GraphNasError(f"a config is a dict (a decoded walk), not "
                        f"{type(config).__name__}", source=space.source)
  try:
    target = json.loads(_canonical(config))
  except (TypeError, ValueError) as e:
    raise GraphNasError(f"the config is not JSON-able: {e}",
                        source=space.source) from None
  want = _canonical(target)
  adds = {parse_key(e.key)[-1] for edges in space.edges for e in edges
          if e.key and e.op == pb.Action.ADD}
  failed: Dict[Tuple[int, str, bool], int] = {}
  deepest = {"steps": -1, "vertex": space.start, "walk": (), "built": None}
  where = {"source": space.source}
  limit = max(sys.getrecursionlimit(), 4 * space.max_steps + 100)
  old_limit = sys.getrecursionlimit()
  sys.setrecursionlimit(limit)

  counted = len(space.counter_limit) > 0

  def search(vertex, built, frozen, walk, counts=()):
    left = space.max_steps - len(walk)
    if space.terminal[vertex]:
      if _canonical(built) == want:
        return walk
      if len(walk) >= deepest["steps"]:  # ties: the end's difference
        deepest.update(steps=len(walk), vertex=vertex, walk=walk,
                       built=built)
      return None
    if left <= 0 or space.steps_to_terminal[vertex] > left:
      return None
    state = (vertex, _canonical(built), frozen, counts)
    if failed.get(state, -1) >= left:
      return None
    active = not frozen and space._active(vertex, built)  # pylint: disable=protected-access
    allowed = (set(int(a) for a in space.allowed(vertex, list(counts)))
               if counted else None)
    for a, edge in enumerate(space.edges[vertex]):
      if allowed is not None and a not in allowed:
        continue  # taken max_taken times already
      after = counts
      if counted and space.edge_counter[vertex, a] >= 0:
        after = list(counts)
        after[space.edge_counter[vertex, a]] += 1
        after = tuple(after)
      nxt = built
      if active and edge.key:
        nxt = copy.deepcopy(built)
        try:
          apply_edge(nxt, edge, where)
        except GraphNasError:
          continue
        if not _may_become(nxt, target, space.defaults, adds):
          continue
      found = search(edge.target, nxt, frozen or edge.ends_config,
                     walk + (a,), after)
      if found is not None:
        return found
    failed[state] = left
    if len(walk) > deepest["steps"]:
      deepest.update(steps=len(walk), vertex=vertex, walk=walk, built=None,
                     before=built if active else None)
    return None

  try:
    found = search(space.start, copy.deepcopy(space.defaults), False, (),
                   (0,) * len(space.counter_limit))
  finally:
    sys.setrecursionlimit(old_limit)
  if found is not None:
    return tuple(found)
  vertex, walk = deepest["vertex"], deepest["walk"]
  before = [f"{space.vertex_names[v]}:{space.edges[v][a].name}"
            for v, a in zip(_vertices(space, walk), walk)]
  if deepest["built"] is not None:  # a walk fit every decision it made
    path, have, need = _difference(deepest["built"], target)
    have = f"no {path}" if have == _ABSENT else f"{path}={have}"
    need = f"no {path}" if need == _ABSENT else f"{path}={need}"
    raise GraphNasError(
        f"the config is not a walk of space {space.name!r}: the walks that "
        f"fit its decisions end at this vertex with {have}, the "
        f"config has {need} (after {len(before)} decision"
        f"{'s' * (len(before) != 1)}; "
        f"no action sets it otherwise)", source=space.source,
        vertex=space.vertex_names[vertex])
  names = [e.name for e in space.edges[vertex]]
  shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)"
                                  if len(names) > 8 else "")
  after = (f" after {len(before)} decision{'s' * (len(before) != 1)} (last: "
           f"{', '.join(before[-3:])})" if before else " (the first "
           "decision)")
  says = ""
  first = next((e for e in space.edges[vertex] if e.key), None)
  if deepest.get("before") is not None and first is not None:
    trial = copy.deepcopy(deepest["before"])
    try:
      apply_edge(trial, first, where)
      path, _, need = _conflict(trial, target)
      says = (f"; the config has no {path}" if need == _ABSENT else
              f"; the config has {path}={need}")
    except (GraphNasError, TypeError):
      pass
  raise GraphNasError(
      f"the config is not a walk of space {space.name!r}: no action of "
      f"this vertex{after} fits it (its actions: {shown}{says})",
      source=space.source, vertex=space.vertex_names[vertex])


_ABSENT = "(absent)"


def _difference(built, target, path=""):
  """(key path, built's value, target's value) where they first differ."""
  if isinstance(built, dict) and isinstance(target, dict):
    for k in sorted(set(built) | set(target)):
      sub = f"{path}.{k}" if path else k
      if k not in built:
        return sub, _ABSENT, json.dumps(target[k])
      if k not in target:
        return sub, json.dumps(built[k]), _ABSENT
      if _canonical(built[k]) != _canonical(target[k]):
        return _difference(built[k], target[k], sub)
  if isinstance(built, list) and isinstance(target, list):
    if len(built) != len(target):
      return f"len({path})", len(built), len(target)
    for i, (b, t) in enumerate(zip(built, target)):
      if _canonical(b) != _canonical(t):
        return _difference(b, t, f"{path}[{i}]")
  return path, json.dumps(built), json.dumps(target)


def _conflict(built, target, path=""):
  """(key path, built's value, target's value) where what `built` has
  first disagrees with `target` (keys `built` lacks are not looked at)."""
  if isinstance(built, dict) and isinstance(target, dict):
    for k in sorted(built):
      sub = f"{path}.{k}" if path else k
      if k not in target:
        return sub, json.dumps(built[k]), _ABSENT
      if _canonical(built[k]) != _canonical(target[k]):
        found = _conflict(built[k], target[k], sub)
        if found is not None:
          return found
    return None
  if isinstance(built, list) and isinstance(target, list):
    if len(built) > len(target):
      return f"len({path})", len(built), len(target)
    for i, (b, t) in enumerate(zip(built, target)):
      found = _conflict(b, t, f"{path}[{i}]")
      if found is not None:
        return found
    return None
  if _canonical(built) == _canonical(target):
    return None
  return path, json.dumps(built), json.dumps(target)


def _vertices(space, walk: Sequence[int]):
  out, cur = [], space.start
  for a in walk:
    out.append(cur)
    cur = space.edges[cur][a].target
  return out


def _may_become(built, target, default: Optional[Any], adds,
                name: Optional[str] = None) -> bool:
  """Whether a partial config can still become `target` (see the module
  docstring); `default` is the space's default at the same place."""
  if isinstance(built, dict):
    if not isinstance(target, dict):
      return False
    default = default if isinstance(default, dict) else {}
    return all(k in target and _may_become(v, target[k], default.get(k),
                                           adds, k)
               for k, v in built.items())
  if isinstance(built, list):
    if not isinstance(target, list) or len(built) > len(target):
      return False
    default = default if isinstance(default, list) else []
    return all(_may_become(v, target[i], default[i] if i < len(default)
                           else None, adds)
               for i, v in enumerate(built))
  if _canonical(built) == _canonical(target):
    return True
  return name in adds or (default is not None and
                          _canonical(built) == _canonical(default))
