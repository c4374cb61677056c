"""TensorBoard HParams: each trial's decisions beside its results.

TensorBoard's HParams dashboard (its table, parallel-coordinates and
scatter-plot views) compares *sessions*: one run folder per session holding
the session's hyperparameters and its metrics as scalars. A search writes

  <out_dir>/tensorboard/                     the experiment: which hparams
                                             (with their domains, derived
                                             from the space) and metrics
  <out_dir>/tensorboard/trials/trial_000012  one session per trial: its
                                             decisions and its results

A trial's decisions are its decoded config flattened to readable names:
a list becomes its length (``num_layers``) and one group per element
(``layer1/kernel_size``, ``layer1/filters``, ...); nested fields are joined
by ``/``; a toy space's keys stay as they are (``optimizer``, ``p1``).
Only names that can differ between trials are hyperparameters: a value that
is the same in every architecture (a default, a fixed stride) is left out.

Domains are found by walking the space abstractly (graph_nas.space knows
nothing of this): every vertex with the config's *shape* (which lists and
fields exist, and the lists' lengths) but not its values. Every value an
action can write lands in its name's domain, so the domains may hold values
no finished architecture has, never miss one. A name that an ADD action
changes has no domain (any number); a space too large to walk this way
falls back to names seen on random walks, without domains.
"""

import json
import math
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from graph_nas.errors import GraphNasError

TRIALS_DIR = "trials"
# (tag, display name, description): the metrics of every session.
METRICS = (
    ("hparams/reward", "reward", "the search's reward"),
    ("hparams/val_accuracy", "validation accuracy",
     "accuracy on the held-out part of the training split"),
    ("hparams/flops", "multiply-adds",
     "multiply-adds of one forward pass of one image (stored as flops)"),
    ("hparams/params", "parameters", "trainable and other parameters"),
    ("hparams/seconds", "seconds", "wall-clock seconds of the trial"),
    ("hparams/failed", "failed", "1 when the trial failed"),
    ("hparams/rung", "rung reached", "early stopping: the highest rung the "
     "child reached (the last: its whole budget)"),
    ("hparams/budget_fraction", "budget trained", "early stopping: the "
     "share of its training budget the child trained; its reward is its "
     "score there"),
)
# A numeric domain with more values than this is an interval, not a list.
MAX_DISCRETE = 12
MAX_STATES = 200_000  # abstract states walked before the fallback
FALLBACK_WALKS = 2000

_LEN = object()  # a path token: the length of the list before it
_ANY = object()  # a domain value: any number (an ADD action)


def trial_run(trial_id: int) -> str:
  """The run (folder under tensorboard/) of a trial's session."""
  return f"{TRIALS_DIR}/trial_{trial_id:06d}"


# ------------------------------------------------------------ flattening
def _singular(name: str) -> str:
  return name[:-1] if len(name) > 1 and name.endswith("s") else name


def path_name(tokens) -> str:
  """('layers', 0, 'kernel_size') -> 'layer1/kernel_size';
  ('layers', _LEN) -> 'num_layers'; ('p1',) -> 'p1'."""
  parts, i = [], 0
  while i < len(tokens):
    tok = tokens[i]
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if nxt is _LEN:
      parts.append(f"num_{tok}")
      i += 2
    elif isinstance(nxt, int):
      parts.append(f"{_singular(tok)}{nxt + 1}")
      i += 2
    else:
      parts.append(str(tok))
      i += 1
  return "/".join(parts)


def _leaves(node, prefix=()) -> Iterator[Tuple[tuple, Any]]:
  """(path tokens, value) of every scalar and every list length."""
  if isinstance(node, dict):
    for key, value in node.items():
      yield from _leaves(value, prefix + (key,))
  elif isinstance(node, list):
    yield prefix + (_LEN,), len(node)
    for i, item in enumerate(node):
      yield from _leaves(item, prefix + (i,))
  elif prefix:
    yield prefix, node


def flatten(config: dict) -> Dict[str, Any]:
  """A decoded config as {readable name: scalar}."""
  return {path_name(p): v for p, v in _leaves(config)}


# --------------------------------------------------------------- domains
def _skeleton(node):
  """The config's shape: every scalar replaced by 0."""
  if isinstance(node, dict):
    return {k: _skeleton(v) for k, v in node.items()}
  if isinstance(node, list):
    return [_skeleton(v) for v in node]
  return 0


def _resolve(skel, path) -> tuple:
  """A key path with its list indexes made non-negative (in skel)."""
  out, node = [], skel
  for tok in path:
    if isinstance(tok, int):
      tok %= len(node)
    out.append(tok)
    node = node[tok] if isinstance(node, (dict, list)) else None
  return tuple(out)


def _shape_key(skel) -> str:
  return json.dumps(skel, sort_keys=True, separators=(",", ":"))


class _TooLarge(Exception):
  pass


def _abstract_values(space, max_states: int):
  """{path tokens: set of values (or with _ANY)}, in first-seen order."""
  from graph_nas import space as space_lib
  values: Dict[tuple, set] = {}

  def note(tokens, value):
    # Typed: a set alone would take True, 1 and 1.0 for one value.
    values.setdefault(tokens, set()).add(
        value if value is _ANY else (type(value).__name__, value))

  for tokens, value in _leaves(space.defaults):
    if tokens[-1] is not _LEN:
      note(tokens, value)
  start = _skeleton(space.defaults)
  stack = [(space.start, 0, False, start)]
  seen = set()
  while stack:
    v, steps, frozen, skel = stack.pop()
    key = (v, steps, frozen, _shape_key(skel))
    if key in seen:
      continue
    seen.add(key)
    if len(seen) > max_states:
      raise _TooLarge()
    if space.terminal[v] or steps >= space.max_steps:
      for tokens, n in _leaves(skel):
        if tokens[-1] is _LEN:
          note(tokens, n)
      continue
    maybe_active = []
    if not frozen:
      try:  # a missing field: never active; else either (values unknown)
        for path, _ in space.conditions[v]:
          space_lib.get_path(skel, path)
        maybe_active = [True] + ([False] if space.conditions[v] else [])
      except (KeyError, IndexError, TypeError):
        maybe_active = [False]
    for edge in space.edges[v]:
      nxt_frozen = frozen or edge.ends_config
      for active in maybe_active or [False]:
        new = skel
        if active and edge.key:
          new = _skeleton(skel)  # a copy
          try:
            space_lib.apply_edge(new, edge, {"source": space.source})
          except GraphNasError:
            continue  # such walks fail to decode: no architecture
          path = space_lib.parse_key(edge.key)
          tokens = _resolve(new, path)
          if edge.op == space_lib.pb.Action.APPEND:
            if edge.value is not None:
              note(tokens + (len(space_lib.get_path(new, tokens)) - 1,),
                   edge.value)
          elif edge.op == space_lib.pb.Action.ADD:
            note(tokens, _ANY)
          else:
            note(tokens, edge.value)
          new = _skeleton(new)
        stack.append((edge.target, steps + 1, nxt_frozen, new))
  return values


def _sampled_values(space, walks: int):
  rng = np.random.default_rng(0)
  values: Dict[tuple, set] = {}
  for _ in range(walks):
    try:
      config = space.decode(space.sample_random(rng).actions)
    except GraphNasError:
      continue
    for tokens, value in _leaves(config):
      values.setdefault(tokens, set()).add(_ANY)
  return values


def _domain(typed: set):
  """An hp domain for a set of (type name, value), or None (any value)."""
  from tensorboard.plugins.hparams import api as hp
  if _ANY in typed:
    return None
  vals = [v for _, v in typed]
  if all(isinstance(v, bool) for v in vals) or all(
      isinstance(v, str) for v in vals):
    return hp.Discrete(sorted(vals))
  if all(isinstance(v, (int, float)) and not isinstance(v, bool)
         for v in vals):
    ints = all(isinstance(v, int) for v in vals)
    if len(vals) > MAX_DISCRETE:
      return (hp.IntInterval(min(vals), max(vals)) if ints else
              hp.RealInterval(float(min(vals)), float(max(vals))))
    return hp.Discrete(sorted(vals) if ints else
                       sorted({float(v) for v in vals}))
  return None  # mixed kinds: no single domain


def decisions(space) -> Dict[str, Any]:
  """{readable name: hp domain or None} of the names that can differ
  between architectures of `space` (see the module doc)."""
  space = getattr(space, "graph", space)  # a linear twin decodes via it
  try:
    values = _abstract_values(space, MAX_STATES)
  except _TooLarge:
    values = _sampled_values(space, FALLBACK_WALKS)
  out = {}
  for tokens, vals in values.items():
    if len(vals) > 1 or _ANY in vals:
      out.setdefault(path_name(tokens), set()).update(vals)
  return {name: _domain(vals) for name, vals in out.items()}


# --------------------------------------------------------------- writing
def _hparam(name, domain):
  from tensorboard.plugins.hparams import api as hp
  return hp.HParam(name, domain)


def write_config(writer, space) -> List[str]:
  """Writes the experiment (hparams and metrics) with `writer` (the
  search's own, at tensorboard/); returns the hparam names."""
  from tensorboard.plugins.hparams import api as hp
  names = decisions(space)
  with writer.as_default():
    hp.hparams_config(
        hparams=[_hparam(n, d) for n, d in names.items()],
        metrics=[hp.Metric(tag, display_name=label, description=text)
                 for tag, label, text in METRICS])
  writer.flush()
  return list(names)


def _number(value) -> Optional[float]:
  try:
    value = float(value)
  except (TypeError, ValueError):
    return None
  return value if math.isfinite(value) else None


def trial_metrics(row: Dict) -> Dict[str, float]:
  """{metric tag: value} of a stored trial (absent values left out)."""
  ok = row["status"] == "ok"
  m = row.get("metrics") or {}
  values = {"hparams/reward": row["reward"] if ok else None,
            "hparams/val_accuracy": m.get("val_accuracy"),
            "hparams/flops": m.get("flops"), "hparams/params":
            m.get("params"), "hparams/seconds": row.get("seconds"),
            "hparams/failed": 0.0 if ok else 1.0,
            "hparams/rung": row.get("rung"),
            "hparams/budget_fraction": row.get("budget_fraction")}
  return {k: v for k, v in ((k, _number(v)) for k, v in values.items())
          if v is not None}


def trial_hparams(config: dict, names) -> Dict[str, Any]:
  """The trial's values of the experiment's hparam `names`."""
  names = set(names)
  return {k: v for k, v in flatten(config or {}).items()
          if k in names and isinstance(v, (bool, int, float, str))}


def write_trial(logdir: str, row: Dict, names) -> str:
  """One session: the trial's decisions and metrics in its own run folder
  under `logdir` (tensorboard/); returns that folder."""
  import tensorflow as tf
  from tensorboard.plugins.hparams import api as hp
  run = trial_run(row["trial_id"])
  path = os.path.join(logdir, *run.split("/"))
  writer = tf.summary.create_file_writer(path)
  try:
    with writer.as_default(step=row["trial_id"]):
      hp.hparams(trial_hparams(row["config"], names),
                 trial_id=run.split("/")[-1],
                 start_time_secs=row.get("started"))
      for tag, value in trial_metrics(row).items():
        tf.summary.scalar(tag, value)
  finally:
    writer.close()
  return path
