"""What a search has learned: the controller's edge probabilities.

The dynamic controller is an LSTM, so the probability of an action at a
vertex depends on the path that led there. :func:`edge_probabilities`
summarises the policy per vertex: it samples walks from the controller,
replays them, and averages the action distribution at each vertex over every
visit that the sampled walks make to it (a vertex visited twice by one walk,
as in a self loop, counts twice). At a vertex that no sampled walk visits
the probabilities are unknown (None).

A random-search or evolution run has no controller: its policy is uniform
at every vertex, and its visit shares are estimated from uniform random
walks (:func:`policy_of_run`). What such a run found is better shown by
:func:`trials_policy`: how often each action was taken at each vertex by
the walks of its best trials.

  probs = policy.policy_of_run("runs/toy", space)
  probs.probs[v]      # array of p(action) at vertex v, sums to 1
  probs.visit_share[v]  # share of sampled walks that visit v
"""

import dataclasses
import os
from typing import List, Optional, Tuple

import numpy as np

from graph_nas.errors import GraphNasError
from graph_nas.search import checkpoint as checkpoint_lib
from graph_nas.search.run_folder import CHECKPOINT_NAME
from graph_nas.space import SearchSpace


@dataclasses.dataclass
class Policy:
  """Per-vertex action probabilities of a controller (see module doc).

  probs: per vertex, float array [num_actions] summing to 1, or None where
    no sampled walk visits the vertex (and at terminals).
  visits: per vertex, the number of visits made by the sampled walks.
  visit_share: per vertex, the share of sampled walks that visit it.
  num_walks: walks sampled.  source: what the policy is, in words.
  """
  probs: List[Optional[np.ndarray]]
  visits: np.ndarray
  visit_share: np.ndarray
  num_walks: int
  source: str


def _accumulate(space: SearchSpace, vertices_per_step, probs_per_step,
                live_per_step):
  n = len(space.vertex_names)
  sums = np.zeros((n, space.max_actions), np.float64)
  visits = np.zeros(n, np.int64)
  for v, p, live in zip(vertices_per_step, probs_per_step, live_per_step):
    v, p = v[live], p[live]
    np.add.at(sums, v, p)
    np.add.at(visits, v, 1)
  return sums, visits


def _visit_share(space, walks_vertices, num_walks):
  n = len(space.vertex_names)
  seen = np.zeros(n, np.int64)
  for verts in walks_vertices:
    seen[sorted(set(verts))] += 1
  return seen / max(num_walks, 1)


def _finish(space, sums, visits, share, num_walks, source):
  probs = []
  for v in range(len(space.vertex_names)):
    k = int(space.num_actions[v])
    if k == 0 or visits[v] == 0:
      probs.append(None)
      continue
    p = sums[v, :k] / visits[v]
    probs.append(p / p.sum())
  return Policy(probs, visits, share, num_walks, source)


def controller_policy(space: SearchSpace, controller, num_walks: int = 512,
                      seed: int = 0, source: str = "controller") -> Policy:
  """Samples num_walks walks from controller; averages p(a | visit)."""
  import tensorflow as tf
  if num_walks < 1:
    raise GraphNasError(f"num_walks must be >= 1, got {num_walks}")
  controller.rng.reset_from_seed(seed)
  actions, lengths, _ = controller.sample_tensors(num_walks)
  steps = actions.shape[1] if actions.ndim == 2 else 0
  v = np.full(num_walks, space.start, np.int32)
  prev = np.full(num_walks, controller.start_token, np.int32)
  state = controller.initial_state(num_walks)
  verts, probs, lives = [], [], []
  walk_vertices = [[space.start] for _ in range(num_walks)]
  step = tf.function(controller._step, reduce_retracing=True)
  for t in range(steps):
    live = t < lengths
    if not live.any():
      break
    logits, state = step(tf.constant(v), tf.constant(prev), state)
    p = tf.nn.softmax(logits).numpy()
    verts.append(v.copy())
    probs.append(p)
    lives.append(live)
    a = np.maximum(actions[:, t], 0)
    prev = np.where(live, space.action_offset[v] + a, prev).astype(np.int32)
    nxt = space.next_vertex[v, a]
    v = np.where(live, nxt, v).astype(np.int32)
    for i in np.flatnonzero(live):
      walk_vertices[i].append(int(v[i]))
  sums, visits = _accumulate(space, verts, probs, lives)
  share = _visit_share(space, walk_vertices, num_walks)
  return _finish(space, sums, visits, share, num_walks, source)


def uniform_policy(space: SearchSpace, num_walks: int = 512, seed: int = 0,
                   source: str = "uniform (random search)") -> Policy:
  """The uniform policy; visit shares from uniform random walks."""
  rng = np.random.default_rng(seed)
  walks = [space.sample_random(rng) for _ in range(num_walks)]
  n = len(space.vertex_names)
  visits = np.zeros(n, np.int64)
  for w in walks:
    for u in w.vertices[:-1]:
      visits[u] += 1
  probs = [None if space.num_actions[u] == 0 or visits[u] == 0 else
           np.full(int(space.num_actions[u]), 1.0 / space.num_actions[u])
           for u in range(n)]
  share = _visit_share(space, [w.vertices for w in walks], num_walks)
  return Policy(probs, visits, share, num_walks, source)


def trials_policy(space: SearchSpace, walks, source: str) -> Policy:
  """Action frequencies of stored walks (a run's best trials): at each
  vertex, the share of the walks' visits that took each action; visit
  shares: the share of the walks that visit the vertex. A walk that does
  not fit the space is an error naming it."""
  walks = list(walks)
  n = len(space.vertex_names)
  sums = np.zeros((n, space.max_actions), np.float64)
  visits = np.zeros(n, np.int64)
  checked = []
  for i, actions in enumerate(walks):
    try:
      w = space.check_walk(actions)
    except GraphNasError as e:
      raise GraphNasError(f"walk {i} of the trials does not fit the space: "
                          f"{e}") from None
    checked.append(w.vertices)
    for v, a in zip(w.vertices[:-1], w.actions):
      sums[v, a] += 1
      visits[v] += 1
  share = _visit_share(space, checked, len(walks))
  return _finish(space, sums, visits, share, len(walks), source)


def checkpoint_kind(checkpoint: str) -> Tuple[str, bool]:
  """(algorithm name, whether it holds a controller) of a search
  checkpoint, read without TensorFlow; a GraphNasError when it is missing
  or unreadable."""
  try:
    arrays, meta = checkpoint_lib.read(checkpoint)
  except checkpoint_lib.CheckpointMissing:
    raise GraphNasError("no checkpoint here (has the search run one "
                        "update yet?)", source=checkpoint) from None
  return (meta.get(checkpoint_lib.NAME_KEY, "?"),
          checkpoint_lib.num_controller_weights(arrays) > 0)


def load_controller(space: SearchSpace, checkpoint: str):
  """(controller or None, algorithm name) from a search checkpoint.

  The controller's sizes are read from the saved weights. None for a
  random-search checkpoint (it has no controller)."""
  try:
    arrays, meta = checkpoint_lib.read(checkpoint)
  except checkpoint_lib.CheckpointMissing:
    raise GraphNasError("no checkpoint here (has the search run one "
                        "update yet?)", source=checkpoint) from None
  name = meta.get(checkpoint_lib.NAME_KEY, "?")
  weights = checkpoint_lib.controller_weights(arrays)
  if not weights:
    return None, name
  kernels = [w for w in weights if w.ndim == 3]
  embeds = [w for w in weights if w.ndim == 2 and
            w.shape[0] == space.num_global_actions + 1]
  if len(kernels) != 1 or len(embeds) != 1 or \
      kernels[0].shape[0] != len(space.vertex_names) or \
      kernels[0].shape[2] != space.max_actions:
    raise GraphNasError("the checkpoint's controller does not fit this "
                        "space: was it written for another one?",
                        source=checkpoint)
  from graph_nas.search.controller import DynamicController
  controller = DynamicController(space, embedding_dim=embeds[0].shape[1],
                                 hidden_dim=kernels[0].shape[1])
  have = [w.shape for w in controller.get_weights()]
  if have != [w.shape for w in weights]:
    raise GraphNasError("the checkpoint's controller weights do not fit "
                        "this space's controller", source=checkpoint)
  controller.set_weights(weights)
  return controller, name


def policy_of_run(out_dir: str, space: SearchSpace, num_walks: int = 512,
                  seed: int = 0) -> Policy:
  """The policy held by a search output folder's checkpoint."""
  path = os.path.join(out_dir, CHECKPOINT_NAME)
  controller, name = load_controller(space, path)
  if controller is None:
    return uniform_policy(space, num_walks, seed,
                          source=f"uniform ({name} search)")
  return controller_policy(
      space, controller, num_walks, seed,
      source=f"{name} controller ({num_walks} sampled walks)")
