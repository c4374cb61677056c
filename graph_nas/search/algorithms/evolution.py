"""Regularized (aging) evolution over graph walks: the algorithm
(`RegularizedEvolution`), its population and its mutation. Plain numpy: no
TensorFlow (the default searcher loads without it).

Aging evolution (Real et al. 2019, "Regularized evolution for image
classifier architecture search"): until the population holds P walks, the
proposals are uniformly random walks; after that each proposal is a
mutation of the best of S walks drawn uniformly (without replacement) from
the population, the *tournament*. Every evaluated walk joins the
population, and the oldest members beyond P leave it, whatever their
reward. A failed trial (a non-finite reward) joins as the worst: it ranks
below every finite reward, and ages out like any other.

Mutation of a parent walk (the action indices a_0 .. a_{T-1} taken at the
visited vertices v_0 .. v_T), one of two kinds:

- **Action change** (always possible unless every visited vertex has one
  action): pick a step t uniformly among the steps whose vertex has at least
  two actions; take another action of that vertex, uniformly among the
  others; then walk on from the vertex it leads to. At each later step the
  walk keeps the parent's decision where the parent made one at that
  vertex: the k-th visit of vertex u takes the action the parent took at
  its k-th visit of u. Where the parent never got there (the graph
  branched elsewhere, or a loop now turns more often), the action is drawn
  uniformly. While the child walks the parent's vertices in the parent's
  order this is "keep the decision at the same position"; where a branch of
  another length rejoins the parent's path, the decisions after the join are
  kept too.
- **Loop change** (only for a walk that revisits a vertex; chosen with
  probability ``loop_mutation_prob`` when possible): a *turn* is a segment
  of the walk from a visit of a vertex to its next visit (v_i = v_j, i < j,
  no v_i in between), one pass round a self loop or a cycle, taken from
  the cycle's entry (the vertex of the segment the walk reached first: the
  turn is e.g. one whole layer, its decisions included). Pick a turn
  uniformly; duplicate it (insert the same actions
  again right after it) or, with equal probability, remove it. A duplicate
  that would exceed max_steps removes instead. A removal from a walk that
  max_steps had cut short walks on as above (to a terminal, or to
  max_steps).

- **Local step** (an option, ``local_prob``; 0 is the textbook mutation
  above): an action change at a vertex whose actions are numbers in
  increasing order (an int_range, a list of sizes) moves, with probability
  ``local_prob``, to a nearby value instead of a uniform other one: a
  signed offset of |d| >= 1 index positions, |d| drawn log-uniformly
  between 1 and a quarter of the vertex's actions (clipped to the range).
  Neighbouring values then stay neighbours: a reward that is smooth in the
  value is climbed step by step, as a person tuning it would.

Every child is checked with ``SearchSpace.check_walk`` and differs from its
parent; a child that max_steps cuts short (a truncated walk, valid but not
at a terminal) is drawn again, up to ``attempts`` times, and accepted only
when no attempt reached a terminal. A parent that has nothing to mutate
(every visited vertex has one action and it revisits no vertex: the only
walk of its space) gets a random walk instead.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from graph_nas.errors import GraphNasError
from graph_nas.search.algorithms.base import Algorithm, check_declared
from graph_nas.search.settings import AlgorithmSettings
from graph_nas.search.settings import defaults as _declared
from graph_nas.space import SearchSpace
from graph_nas.space.base import Actions, Walk

# The declared defaults (graph_nas.search.settings), not numbers said again
# here.
_D = _declared(AlgorithmSettings)

# The share of mutations that add or remove a turn of a loop, where the
# parent has one.
LOOP_MUTATION_PROB = 0.5
# Mutations of one parent tried for a child that is not cut short by
# max_steps and differs from its parent.
ATTEMPTS = 20


def ordered_numeric(space) -> np.ndarray:
  """bool [V]: vertex v has >= 3 actions whose values are numbers in
  increasing order (the vertices where a local step means something)."""
  out = np.zeros(len(space.vertex_names), bool)
  for v, edges in enumerate(space.edges):
    values = [e.value for e in edges]
    if len(values) >= 3 and all(isinstance(x, (int, float)) and
                                not isinstance(x, bool) for x in values):
      out[v] = all(a < b for a, b in zip(values, values[1:]))
  return out


def local_step(current: int, n: int, rng: np.random.Generator) -> int:
  """An action index near `current` among n ordered ones (module doc):
  offset +-d, d log-uniform in [1, max(1, n / 4)], clipped, never 0."""
  top = max(1.0, n / 4.0)
  d = int(round(math.exp(rng.uniform(0.0, math.log(top)))))
  d = max(1, d) * (1 if rng.random() < 0.5 else -1)
  new = min(n - 1, max(0, current + d))
  if new == current:  # at an end of the range: step inwards
    new = current - 1 if current == n - 1 else current + 1
  return new


# ---------------------------------------------------------------- mutation
def turns(walk: Walk) -> List[Tuple[int, int]]:
  """(i, j) of every turn of a walk: v_i = v_j, i < j, no visit of v_i
  between them (steps i .. j-1 are one pass round a cycle), and v_i the
  cycle's entry: of the vertices v_i .. v_{j-1}, the walk reached v_i
  first (a turn is a whole layer, not the end of one and the start of the
  next)."""
  out, last, first = [], {}, {}
  for j, v in enumerate(walk.vertices):
    first.setdefault(v, j)
    i = last.get(v)
    if i is not None and first[v] == min(first[u] for u in
                                         walk.vertices[i:j]):
      out.append((i, j))
    last[v] = j
  return out


def _visit_decisions(walk: Walk) -> Dict[Tuple[int, int], int]:
  """(vertex, k) -> the action the walk took at its k-th visit of vertex."""
  seen, out = {}, {}
  for v, a in zip(walk.vertices, walk.actions):
    k = seen.get(v, 0)
    seen[v] = k + 1
    out[(v, k)] = a
  return out


def walk_on(space, prefix: Sequence[int], parent: Walk,
            rng: np.random.Generator) -> Actions:
  """`prefix` continued to a terminal vertex (or to max_steps): at each
  vertex, the parent's decision for the same visit of that vertex when it
  made one, else a uniform draw."""
  decisions = _visit_decisions(parent)
  actions = [int(a) for a in prefix]
  cur, seen = space.start, {}
  counted = len(space.counter_limit) > 0
  counts = np.zeros(len(space.counter_limit), np.int64)

  def count(v, a):
    if counted and space.edge_counter[v, a] >= 0:
      counts[space.edge_counter[v, a]] += 1

  for a in actions:
    seen[cur] = seen.get(cur, 0) + 1
    count(cur, a)
    cur = int(space.next_vertex[cur, a])
  while not space.terminal[cur] and len(actions) < space.max_steps:
    k = seen.get(cur, 0)
    seen[cur] = k + 1
    a = decisions.get((cur, k))
    if counted:  # max_taken: an action used up is not taken again
      allowed = space.allowed(cur, counts)
      if a is None or a not in allowed:
        a = int(allowed[rng.integers(len(allowed))])
    elif a is None:
      a = int(rng.integers(space.num_actions[cur]))
    count(cur, a)
    actions.append(int(a))
    cur = int(space.next_vertex[cur, a])
  return tuple(actions)


def change_action(space, parent: Walk, rng: np.random.Generator,
                  step: Optional[int] = None, local_prob: float = 0.0,
                  ordered: Optional[np.ndarray] = None) -> Optional[Actions]:
  """An action change of `parent` (at `step`, or a uniform step among
  those whose vertex has two actions or more); None if there is none.
  With `local_prob` > 0 (and `ordered`, ordered_numeric(space)), a change
  at an ordered numeric vertex is a local step with that probability."""
  if step is None:
    steps = [t for t, v in enumerate(parent.vertices[:-1])
             if space.num_actions[v] > 1]
    if not steps:
      return None
    step = steps[int(rng.integers(len(steps)))]
  v = parent.vertices[step]
  n = int(space.num_actions[v])
  if local_prob > 0 and ordered is not None and ordered[v] and \
      rng.random() < local_prob:
    new = local_step(int(parent.actions[step]), n, rng)
  else:
    # Uniform among the n - 1 other actions.
    other = int(rng.integers(n - 1))
    new = other + (other >= parent.actions[step])
  return walk_on(space, parent.actions[:step] + (new,), parent, rng)


def change_loop(space, parent: Walk,
                rng: np.random.Generator) -> Optional[Actions]:
  """`parent` with one turn of a loop duplicated or removed; None if it
  revisits no vertex."""
  options = turns(parent)
  if not options:
    return None
  i, j = options[int(rng.integers(len(options)))]
  actions = parent.actions
  add = rng.random() < 0.5
  if add and len(actions) + (j - i) <= space.max_steps:
    return actions[:j] + actions[i:j] + actions[j:]
  return walk_on(space, actions[:i] + actions[j:], parent, rng)


def _mutate_once(space, parent: Walk, rng, loop_prob, local_prob,
                 ordered) -> Optional[Actions]:
  if turns(parent) and rng.random() < loop_prob:
    return change_loop(space, parent, rng)
  child = change_action(space, parent, rng, local_prob=local_prob,
                        ordered=ordered)
  return child if child is not None else change_loop(space, parent, rng)


def mutate(space, parent: Sequence[int], rng: np.random.Generator,
           loop_prob: float = LOOP_MUTATION_PROB,
           attempts: int = ATTEMPTS, local_prob: float = 0.0,
           ordered: Optional[np.ndarray] = None) -> Actions:
  """A valid child walk of `parent`, different from it (see the module
  docstring); a random walk when the parent has nothing to mutate."""
  walk = space.check_walk(parent)
  if local_prob > 0 and ordered is None:
    ordered = ordered_numeric(space)
  cut_short = None
  for _ in range(attempts):
    child = _mutate_once(space, walk, rng, loop_prob, local_prob, ordered)
    if child is None:
      break
    if child == walk.actions:
      continue
    try:
      checked = space.check_walk(child)
    except GraphNasError:  # e.g. a duplicated turn beyond a max_taken
      continue
    if not checked.truncated:
      return child
    cut_short = cut_short or child
  if cut_short is not None:
    return cut_short
  return space.sample_random(rng).actions


# Other actions tried per step by `neighbours` (all of them at a vertex
# with up to this many others; a uniform sample of this many beyond).
NEIGHBOUR_ACTIONS = 8


def neighbours(space, parent: Sequence[int], rng: np.random.Generator,
               max_actions: int = NEIGHBOUR_ACTIONS) -> List[Actions]:
  """The walks one action change or one loop change away from `parent`:
  at every step whose vertex has two actions or more, each other action
  (a uniform sample of `max_actions` where there are more), walked on as
  an action change does (the parent's decision kept wherever it made one,
  a uniform draw elsewhere: rng); then each turn of a loop duplicated and
  removed. Valid walks only, none cut short by max_steps, no repeats, the
  parent excluded; in that order."""
  walk = space.check_walk(parent)
  out, seen = [], {walk.actions}

  def keep(child):
    if child is None or child in seen:
      return
    try:
      checked = space.check_walk(child)
    except GraphNasError:
      return
    if not checked.truncated:
      seen.add(child)
      out.append(child)

  for t, v in enumerate(walk.vertices[:-1]):
    n = int(space.num_actions[v])
    others = [a for a in range(n) if a != walk.actions[t]]
    if len(others) > max_actions:
      others = sorted(int(a) for a in rng.choice(others, size=max_actions,
                                                 replace=False))
    for a in others:
      keep(walk_on(space, walk.actions[:t] + (a,), walk, rng))
  actions = walk.actions
  for i, j in turns(walk):
    if len(actions) + (j - i) <= space.max_steps:
      keep(actions[:j] + actions[i:j] + actions[j:])
    keep(walk_on(space, actions[:i] + actions[j:], walk, rng))
  return out


# -------------------------------------------------------------- population
class Population:
  """The population of aging evolution: (walk, reward, born) in order of
  arrival; `born` counts every walk that ever joined (its age is
  ``next_born - born``). A reward None is a failed trial."""

  def __init__(self):
    self.walks: List[Actions] = []
    self.rewards: List[Optional[float]] = []
    self.born: List[int] = []
    self.next_born = 0

  def __len__(self):
    return len(self.walks)

  def add(self, walk: Sequence[int], reward: float) -> None:
    reward = float(reward)
    self.walks.append(tuple(int(a) for a in walk))
    self.rewards.append(reward if math.isfinite(reward) else None)
    self.born.append(self.next_born)
    self.next_born += 1

  def age_out(self, size: int) -> int:
    """Removes the oldest members beyond `size`; returns how many."""
    gone = max(0, len(self) - size)
    del self.walks[:gone], self.rewards[:gone], self.born[:gone]
    return gone

  def rank(self, i: int) -> float:
    """Member i's reward for the tournament (a failure: -inf)."""
    r = self.rewards[i]
    return -math.inf if r is None else r

  def tournament(self, rng: np.random.Generator, size: int) -> int:
    """The index of the best of `size` members drawn uniformly without
    replacement (all of them when fewer); ties: the first drawn."""
    sample = rng.choice(len(self), size=min(size, len(self)), replace=False)
    return int(max(sample, key=self.rank))  # max keeps the first of ties

  def best(self) -> Optional[float]:
    finite = [r for r in self.rewards if r is not None]
    return max(finite) if finite else None

  def to_json(self) -> Dict:
    return {"walks": [list(w) for w in self.walks],
            "rewards": list(self.rewards), "born": list(self.born),
            "next_born": self.next_born}

  @classmethod
  def from_json(cls, data: Dict) -> "Population":
    pop = cls()
    pop.walks = [tuple(int(a) for a in w) for w in data["walks"]]
    pop.rewards = [None if r is None else float(r) for r in data["rewards"]]
    pop.born = [int(b) for b in data["born"]]
    pop.next_born = int(data["next_born"])
    return pop


# -------------------------------------------------------------- algorithm
class RegularizedEvolution(Algorithm):
  """Aging evolution over walks (Real et al. 2019; the module doc): random
  walks until the population is full, then mutations of tournament
  winners. Non-finite rewards join the population as its worst."""

  name = "evolution"

  def __init__(self, space: SearchSpace, seed: int = 0,
               population_size: int = _D["population_size"],
               tournament_size: int = _D["tournament_size"],
               loop_mutation_prob: float = LOOP_MUTATION_PROB,
               local_step_prob: float = _D["local_step_prob"],
               no_repeats: bool = _D["no_repeats"]):
    super().__init__(space, seed)
    check_declared("evolution", population_size=population_size,
                   tournament_size=tournament_size,
                   local_step_prob=local_step_prob, no_repeats=no_repeats)
    if not 0 <= loop_mutation_prob <= 1:  # an argument, not a setting
      raise GraphNasError(f"loop_mutation_prob must be in [0, 1], got "
                          f"{loop_mutation_prob}")
    self.local_step_prob = float(local_step_prob)
    self._ordered = ordered_numeric(space)
    self.no_repeats = bool(no_repeats)
    self.population_size = int(population_size)
    self.tournament_size = int(tournament_size)
    self.loop_mutation_prob = float(loop_mutation_prob)
    self.rng = np.random.default_rng(seed)
    self.population = Population()

  def propose(self, n):
    """The i-th walk of a batch is random while the population and the
    batch's earlier random walks are fewer than P, else a mutation (of a
    new tournament's winner). With no_repeats, a walk whose architecture
    was proposed before is drawn again, up to ATTEMPTS times, then a
    random walk is tried as often; the last draw is kept."""
    out = []
    for i in range(n):
      random_phase = len(self.population) + i < self.population_size or \
          not len(self.population)
      tries = 2 * ATTEMPTS if self.no_repeats else 1
      for attempt in range(tries):
        if random_phase or attempt >= ATTEMPTS:
          walk = self.space.sample_random(self.rng).actions
        else:
          parent = self.population.walks[
              self.population.tournament(self.rng, self.tournament_size)]
          walk = mutate(self.space, parent, self.rng,
                        self.loop_mutation_prob,
                        local_prob=self.local_step_prob,
                        ordered=self._ordered)
        if not self.no_repeats or self._unseen(walk):
          break
      out.append(walk)
    return out

  def update(self, walks, rewards):
    for walk, reward in zip(walks, np.asarray(rewards, np.float64)
                            .reshape(-1)):
      self.population.add(walk, reward)
    aged_out = self.population.age_out(self.population_size)
    self.num_updates += 1
    return {"population": len(self.population), "aged_out": aged_out,
            "population_best": self.population.best()}

  def state(self):
    arrays, meta = super().state()
    meta["rng"] = self.rng.bit_generator.state
    meta["population"] = self.population.to_json()
    meta["population_size"] = self.population_size
    meta["tournament_size"] = self.tournament_size
    return arrays, meta

  def restore(self, arrays, meta):
    super().restore(arrays, meta)
    for name in ("population_size", "tournament_size"):
      if meta.get(name) != getattr(self, name):
        raise GraphNasError(f"checkpoint was written with {name} "
                            f"{meta.get(name)}, this algorithm has "
                            f"{getattr(self, name)}")
    self.rng.bit_generator.state = meta["rng"]
    self.population = Population.from_json(meta["population"])
