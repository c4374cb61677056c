"""The checkpoint file of a search algorithm: its format, said once.

A checkpoint (the run folder's ``checkpoint.npz``) is one ``.npz`` file:

  ``__meta__``        a JSON object (a 0-d string array): the algorithm's
                      metadata, with at least ``name`` (the algorithm's
                      name) and ``extra`` (what the caller of
                      :func:`write` stored with the state: the search
                      loop's progress)
  ``controller/<i>``  the controller's weights, ``get_weights()`` order
  ``optimizer/<i>``   the optimizer's variables, ``variables`` order
  ``rng_state``       the controller's sampling RNG state

The search loop's ``extra`` holds ``run_id`` (the run's id, the trial
store's) and ``trials`` (the trials in the store when it was written), and
in an async search ``consumed``; checkpoints written before these had none
(graph_nas.search.run_folder.check_folder reads them when present).

A random search has no controller: its file holds only ``__meta__``. What
else the metadata holds (``num_updates``, ``baseline``, ``queue``, ``rng``,
``entropy_mode``) is each algorithm's own state
(:mod:`graph_nas.search.algorithms`). Every version so far wrote this
layout, so checkpoints of earlier versions read unchanged.

:func:`write` writes atomically (a crash leaves the previous file);
:func:`read` turns whatever makes a file unreadable into a
:class:`GraphNasError` naming it. Plain numpy and JSON: no TensorFlow, so
reports read a checkpoint without building an algorithm.
"""

import json
import os
import zipfile
from typing import Dict, List, Optional, Tuple

import numpy as np

from graph_nas.errors import GraphNasError

META_KEY = "__meta__"
NAME_KEY = "name"  # in the metadata: the algorithm's name
EXTRA_KEY = "extra"  # in the metadata: what the caller stored with it
CONTROLLER_PREFIX = "controller/"
OPTIMIZER_PREFIX = "optimizer/"
RNG_STATE_KEY = "rng_state"
# In the extra: the run's id (TrialStore.run_id), the trials in the store.
RUN_ID_KEY = "run_id"
TRIALS_KEY = "trials"


class CheckpointMissing(GraphNasError):
  """There is no checkpoint file at the path."""


def controller_key(i: int) -> str:
  """The array name of the controller's i-th weight."""
  return f"{CONTROLLER_PREFIX}{i}"


def optimizer_key(i: int) -> str:
  """The array name of the optimizer's i-th variable."""
  return f"{OPTIMIZER_PREFIX}{i}"


def num_controller_weights(arrays: Dict[str, np.ndarray]) -> int:
  return sum(1 for k in arrays if k.startswith(CONTROLLER_PREFIX))


def controller_weights(arrays: Dict[str, np.ndarray]) -> List[np.ndarray]:
  """The controller's weights in order (empty for a random search).

  Raises KeyError when their numbering has a gap."""
  return [arrays[controller_key(i)]
          for i in range(num_controller_weights(arrays))]


def _atomic_write(path: str, write):
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    write(f)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def write(path: str, arrays: Dict[str, np.ndarray], meta: Dict,
          extra: Optional[Dict] = None) -> None:
  """Writes arrays and meta (with `extra`, JSON-able, as its "extra") to
  one .npz file at path, atomically."""
  meta = dict(meta, **{EXTRA_KEY: extra or {}})
  arrays = dict(arrays, **{META_KEY: np.array(json.dumps(meta))})
  _atomic_write(path, lambda f: np.savez(f, **arrays))


def read(path: str) -> Tuple[Dict[str, np.ndarray], Dict]:
  """(arrays, meta) of the checkpoint at path (arrays without __meta__).

  Raises:
    CheckpointMissing: no file at path.
    GraphNasError: a file that is not a checkpoint (or is damaged).
  """
  if not os.path.exists(path):
    raise CheckpointMissing("cannot read checkpoint: no such file",
                            source=path)
  try:
    if not zipfile.is_zipfile(path):
      raise ValueError("not an .npz archive")
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
    if META_KEY not in arrays:
      raise ValueError(f"no {META_KEY} entry")
    meta = json.loads(str(arrays.pop(META_KEY)))
    if not isinstance(meta, dict):
      raise ValueError(f"its {META_KEY} is not a JSON object")
  except FileNotFoundError as e:
    raise CheckpointMissing(f"cannot read checkpoint: {e.strerror or e}",
                            source=path) from None
  except Exception as e:  # pylint: disable=broad-except
    # Whatever a damaged zip raises (BadZipFile, zlib.error, EOFError, ...).
    raise GraphNasError(f"cannot read checkpoint: {_why(e)} (a damaged "
                        "file, or not a checkpoint)", source=path) from None
  return arrays, meta


def _why(error: Exception) -> str:
  """One line of why a file does not read, without numpy's advice to load
  it unsafely."""
  if isinstance(error, OSError):
    return error.strerror or type(error).__name__
  text = str(error)
  if "pickle" in text:
    return "it holds pickled (object) data, which a checkpoint never does"
  if isinstance(error, json.JSONDecodeError):
    return f"its {META_KEY} is not JSON"
  return " ".join(text.split())[:200] or type(error).__name__
