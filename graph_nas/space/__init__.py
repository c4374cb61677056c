"""Search spaces: load a textproto, validate it, index it, decode walks.

A search space is a directed graph (see ``protos/search_space.proto``): each
vertex is a decision, each outgoing edge an action. This package knows
nothing of TensorFlow or training; it turns the proto into integer-indexed
numpy arrays that a batched controller consumes, decodes a walk (a sequence
of per-vertex action indices) into a plain JSON-able config, samples
uniformly random walks, and derives the *linear twin* of any graph space.

Unreachable vertices are a warning (:class:`SpaceWarning`), not an error:
they are kept in the index (a controller holds a head for them that is never
used) so that a space under construction still loads.

A walk that ``max_steps`` stops before a terminal vertex is valid but has no
config: decode refuses it (naming ``max_steps`` and the vertex), so no
half-built architecture reaches a reward. Loading a cyclic space warns when
``max_steps`` can stop walks half way round a loop, and names the vertices
that no walk of at most ``max_steps`` steps passes through
(:mod:`graph_nas.space.analysis`).

Modules, each importing only those above it:

  base      limits, Edge and Walk, proto values, names in messages
  config    config keys (parse_key, format_path), get_path, apply_edge
  lines     line-number recovery: errors mapped back to textproto lines
  expand    proto expansion: actions to edges (one per value), defaults
  analysis  graph analysis: reachability, cycles, walk-length bounds
  keys      static key checks: config-key faults no walk is needed for
  dot       DOT output of a space
  linear    the linear twin's slots, message and replay
  graph     SearchSpace and LinearTwin: index, walk, decode; fingerprint,
            exact_walks, uniform_log_prob
  files     loads, load, find, shipped_spaces
  builder   SpaceBuilder / VertexBuilder: a space built in Python, validated
            as a textproto is (graph_nas.api.SpaceBuilder; imported on
            its own, not re-exported here)

Every name is re-exported here: ``from graph_nas import space`` and
``space.load(...)`` as before.
"""

from graph_nas.errors import GraphNasError, SpaceWarning
from graph_nas.protos import search_space_pb2 as pb
from graph_nas.space.base import (MAX_ACTIONS_PER_VERTEX, MAX_LINEAR_SLOTS,
                                  MAX_TABLE_ENTRIES, MAX_TOTAL_ACTIONS, Edge,
                                  Actions, Walk)
from graph_nas.space.config import apply_edge, format_path, get_path, parse_key
from graph_nas.space.files import (SHIPPED_DIRS, find, load, loads,
                                   shipped_spaces)
from graph_nas.space.graph import (LinearTwin, SearchSpace, exact_walks,
                                   fingerprint, uniform_log_prob)

# The private helpers of the former single module graph_nas/space.py, still
# reachable by their old names.
from graph_nas.space.base import (  # noqa: F401
    _CONTROL_RE, _bad_text, _fmt, _quote, _value, _value_fault)
from graph_nas.space.config import (  # noqa: F401
    _KEY_RE, _TOKEN_RE, _container, _schema)
from graph_nas.space.dot import _dot_quote  # noqa: F401
from graph_nas.space.files import _BOM, _HERE, _SUFFIX  # noqa: F401

__all__ = [
    "Edge", "GraphNasError", "LinearTwin", "MAX_ACTIONS_PER_VERTEX",
    "MAX_LINEAR_SLOTS", "MAX_TABLE_ENTRIES", "MAX_TOTAL_ACTIONS",
    "Actions", "SHIPPED_DIRS", "SearchSpace", "SpaceWarning", "Walk",
    "apply_edge",
    "exact_walks", "find", "fingerprint", "format_path", "get_path", "load",
    "loads", "parse_key", "pb", "shipped_spaces", "uniform_log_prob",
]
