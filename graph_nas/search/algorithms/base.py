"""What every search algorithm is: `Algorithm`, and its settings' check.

An :class:`Algorithm` proposes walks (tuples of per-vertex action indices),
takes their rewards in :meth:`Algorithm.update`, and exposes its whole state
for checkpointing with :meth:`save` / :meth:`load` (the file format is
:mod:`graph_nas.search.checkpoint`'s).

No repeats (``no_repeats``, the learning algorithms and evolution): a
proposal whose architecture (its decoded config) this search has already
proposed is drawn again -- a controller samples more walks and keeps the
unseen ones, evolution mutates again -- up to a bounded number of tries,
after which a repeat is accepted. The search loop counts a repeat as a
trial (it reuses the stored reward), so at a budget of a few hundred
trials a converged controller or a population of near-copies would
otherwise spend much of it on architectures it already knows.

An algorithm's constructor checks the settings it takes through their
declaration (:func:`check_declared`: graph_nas.search.settings'
`AlgorithmSettings`, its bounds, choices and wording), not by hand.

Plain numpy: no TensorFlow.
"""

import abc
import json
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from graph_nas.errors import GraphNasError
from graph_nas.search import checkpoint
from graph_nas.search.settings import AlgorithmSettings
from graph_nas.search.store import config_key
from graph_nas.space import SearchSpace
from graph_nas.space.base import Actions


def check_declared(algorithm: str, **values) -> None:
  """Checks the settings `values` of `algorithm` (names of
  AlgorithmSettings fields) against their declaration: raises the
  declaration's SettingError, naming the first bad one (numpy scalars are
  taken as the Python numbers they hold)."""
  plain = {name: value.item() if isinstance(value, np.generic) else value
           for name, value in values.items()}
  AlgorithmSettings(algorithm=algorithm, **plain).check()


class Algorithm(abc.ABC):
  """Propose walks; update with rewards; save and restore all state."""

  name = "algorithm"

  def __init__(self, space: SearchSpace, seed: int = 0):
    self.space = space
    self.seed = seed
    self.num_updates = 0
    # no_repeats (module doc): the algorithms that take the setting set it;
    # _seen holds the store's config keys of every walk proposed.
    self.no_repeats = False
    self._seen = set()

  def reset(self, seed: int) -> None:
    """Back to the state a new algorithm of `seed` starts in. Subclasses
    that keep more state extend it; `reusable` says whether one does."""
    self.seed = seed
    self.num_updates = 0
    self._seen = set()

  # True where reset() restores everything (benchmarks.suite.driver then
  # reuses the object, and its traced functions, across seeds).
  reusable = False

  @abc.abstractmethod
  def propose(self, n: int) -> List[Actions]:
    """Proposes n walks."""

  @abc.abstractmethod
  def update(self, walks: Sequence[Actions], rewards: Sequence[float]) -> Dict:
    """Learns from finished walks; returns scalar stats."""

  def state(self) -> Tuple[Dict[str, np.ndarray], Dict]:
    """(numpy arrays, JSON-able metadata) that restore this algorithm."""
    meta = {"num_updates": self.num_updates, checkpoint.NAME_KEY: self.name}
    if self.no_repeats:
      meta["seen"] = sorted(self._seen)
    return {}, meta

  def restore(self, arrays: Dict[str, np.ndarray], meta: Dict) -> None:
    name = meta.get(checkpoint.NAME_KEY)
    if name != self.name:
      raise GraphNasError(f"checkpoint is of algorithm '{name}',"
                          f" not '{self.name}'")
    self.num_updates = int(meta["num_updates"])
    if self.no_repeats:
      self._seen = set(meta.get("seen", []))

  # ------------------------------------------------------------ repeats
  def _key(self, walk) -> str:
    """What makes two walks the same architecture: the store's key of the
    decoded config, the one the loop reuses results by (a walk that does
    not decode: its actions)."""
    try:
      config = self.space.decode(walk)
    except GraphNasError:
      return "walk:" + json.dumps([int(a) for a in walk])
    return config_key(config)

  def _unseen(self, walk) -> bool:
    """True, and remembers it, when the walk's architecture is new (a walk
    that decodes)."""
    key = self._key(walk)
    # A walk that does not decode (max_steps cut it) is never "new": it is
    # drawn again like a repeat, so no_repeats does not favour failing walks.
    if key.startswith("walk:") or key in self._seen:
      return False
    self._seen.add(key)
    return True

  def forget(self, walks) -> None:
    """no_repeats forgets these walks' architectures (proposed, then
    screened out: never evaluated, so they may be proposed again)."""
    for walk in walks:
      self._seen.discard(self._key(walk))

  def remember(self, walks) -> None:
    """no_repeats counts these walks' architectures as proposed (queued
    architectures the loop runs without the algorithm proposing them)."""
    if self.no_repeats:
      for walk in walks:
        self._unseen(walk)

  def save(self, path: str, extra: Optional[Dict] = None) -> None:
    """Writes the whole state (and a JSON-able `extra`, returned by load) to
    one .npz file, atomically."""
    arrays, meta = self.state()
    checkpoint.write(path, arrays, meta, extra)

  def load(self, path: str) -> Dict:
    """Restores what save wrote; returns its `extra`."""
    arrays, meta = checkpoint.read(path)
    self.restore(arrays, meta)
    return meta.get(checkpoint.EXTRA_KEY, {})
