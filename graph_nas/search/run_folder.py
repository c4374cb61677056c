"""The files of a search's output folder, each named once, and the check
that they agree before a search touches them.

A search (graph_nas.search) writes them; the reports, the DOT export, the
policy reader and the front ends read them by these names.

Nothing lost, ever: :func:`check_folder` runs before a search takes the
folder's lock or opens its store, and refuses (one line, naming both files
and what to do) a folder whose checkpoint and trial store disagree -- a
checkpoint whose trials are not in the store (the store deleted, emptied,
or shorter than the checkpoint implies), a checkpoint or a
``best_architecture.json`` of another run, a damaged checkpoint -- instead
of starting a search over in it and overwriting its results. It only reads
(the store read-only): a refused folder is left exactly as it was.
"""

import json
import os
from typing import Dict, Optional

DB_NAME = "trials.sqlite"            # every trial (graph_nas.search.store)
CHECKPOINT_NAME = "checkpoint.npz"   # the algorithm's whole state
LOCK_NAME = "search.lock"            # held while a search runs
BEST_NAME = "best_architecture.json"
TOP_NAME = "top_trials.md"
REWARDS_NAME = "rewards.png"
PARETO_NAME = "pareto.png"
TENSORBOARD_DIR = "tensorboard"
BEST_CHILD_DIR = "best_child"

_KEEP = "use another output folder"


def checkpoint_extra(store, **extra) -> Dict:
  """What a search writes with its checkpoint (the `extra` of
  Algorithm.save) besides its own `extra`: the run's id and the number of
  trials in `store` (a TrialStore), which :func:`check_folder` checks the
  store against when the folder is resumed."""
  from graph_nas.search import checkpoint
  return dict(extra, **{checkpoint.RUN_ID_KEY: store.run_id,
                        checkpoint.TRIALS_KEY: store.count()})


def check_folder(out_dir: str) -> None:
  """Refuses an output folder whose files do not agree (see the module
  docstring); a folder that does not exist yet, or holds a search that
  agrees with itself, passes. Reads only: call it before the folder's lock
  and store are created.

  Raises:
    graph_nas.errors.RunFolderConflict: one line naming the files and what
      to do.
  """
  from graph_nas.errors import GraphNasError, RunFolderConflict
  from graph_nas.search import checkpoint
  from graph_nas.search.store import TrialStore

  out_dir = str(out_dir)
  if not os.path.isdir(out_dir):
    return
  ckpt_path = os.path.join(out_dir, CHECKPOINT_NAME)
  db_path = os.path.join(out_dir, DB_NAME)

  def refuse(message):
    raise RunFolderConflict(message, source=out_dir)

  # The checkpoint first: trials are stored before the checkpoint that
  # learned from them, so a search writing the folder now cannot make the
  # store look shorter than the checkpoint read before it.
  meta = None
  if os.path.exists(ckpt_path):
    try:
      meta = checkpoint.read(ckpt_path)[1]
    except checkpoint.CheckpointMissing:  # removed meanwhile
      meta = None
    except GraphNasError as e:
      why = e.reason.replace("cannot read checkpoint: ", "")
      refuse(f"{CHECKPOINT_NAME} cannot be read: {why}: put this run's "
             f"{CHECKPOINT_NAME} back, or move it away to resume from the "
             f"trials in {DB_NAME} with a fresh algorithm, or {_KEEP}")
  best = _read_best(os.path.join(out_dir, BEST_NAME))
  if meta is None and best is None:
    return  # nothing that implies stored trials

  store = _store_state(db_path)
  if store["problem"] is None:
    try:
      with TrialStore(db_path, read_only=True) as db:
        store.update(count=db.count(), run_id=db.run_id,
                     identity=db.get_meta("identity") or {})
        if best is not None:
          store["best_row"] = db.trial(best["trial_id"])
    except GraphNasError as e:
      store["problem"] = f"cannot be read ({e.reason})"

  if meta is not None:
    _check_checkpoint(meta, store, refuse)
  if best is not None:
    _check_best(best, store, refuse)


def _store_state(db_path: str) -> Dict:
  """What the folder's store is, before opening it."""
  state = {"problem": None, "count": 0, "run_id": None, "identity": {},
           "best_row": None}
  if not os.path.exists(db_path):
    state["problem"] = "is missing"
  elif not os.path.getsize(db_path) and not os.path.exists(db_path + "-wal"):
    state["problem"] = "is empty (0 bytes)"  # (a WAL store's may be, live)
  return state


def _check_checkpoint(meta: Dict, store: Dict, refuse) -> None:
  from graph_nas.search import checkpoint
  extra = meta.get(checkpoint.EXTRA_KEY) or {}
  updates = _int(meta.get("num_updates"))
  if checkpoint.TRIALS_KEY in extra:
    need, exact = _int(extra[checkpoint.TRIALS_KEY]), True
  elif "consumed" in extra:  # async, before checkpoints said how many
    need, exact = _int(extra["consumed"]), True
  else:  # sync, before: all batches but the last full, the last begun
    w = _int(store["identity"].get("walks_per_update")) or 1
    need, exact = (updates - 1) * w + 1 if updates > 0 else 0, False
  said = (f"{CHECKPOINT_NAME} was written after {updates} updates and "
          f"{'' if exact else 'at least '}{need} trials")
  restore = (f"put this run's {DB_NAME} back, or {_KEEP} (resuming here "
             "would start the search over and overwrite its results)")
  if store["problem"]:
    refuse(f"{said}, but {DB_NAME} {store['problem']}: {restore}")
  if store["count"] < need:
    refuse(f"{said}, but {DB_NAME} holds {store['count']}: {restore}")
  ours = extra.get(checkpoint.RUN_ID_KEY)
  if ours and ours != store["run_id"]:
    theirs = store["run_id"] or "none"
    refuse(f"{CHECKPOINT_NAME} is of another run than {DB_NAME} (run id "
           f"{ours}, the store's {theirs}): put this run's "
           f"{CHECKPOINT_NAME} back, or move it away to resume from the "
           f"trials in {DB_NAME} with a fresh algorithm, or {_KEEP}")
  name, stored = meta.get(checkpoint.NAME_KEY), store["identity"].get(
      "algorithm")
  if name and stored and name != stored:
    refuse(f"{CHECKPOINT_NAME} is of another run than {DB_NAME} (algorithm "
           f"'{name}', the store's '{stored}'): put this run's "
           f"{CHECKPOINT_NAME} back, or move it away to resume from the "
           f"trials in {DB_NAME} with a fresh algorithm, or {_KEEP}")


def _check_best(best: Dict, store: Dict, refuse) -> None:
  said = f"{BEST_NAME} names trial {best['trial_id']}"
  restore = (f"put this run's {DB_NAME} back, or {_KEEP} (a search here "
             f"would overwrite {BEST_NAME})")
  if store["problem"]:
    refuse(f"{said}, but {DB_NAME} {store['problem']}: {restore}")
  row = store["best_row"]
  if row is None:
    refuse(f"{said}, but {DB_NAME} holds no such trial ({store['count']} "
           f"trials): {restore}")
  if best["walk"] is not None and list(row["walk"]) != best["walk"]:
    refuse(f"{said} with the walk {best['walk']}, but {DB_NAME}'s trial "
           f"{best['trial_id']} has {list(row['walk'])}: the two are of "
           f"different runs; {restore}")


def _read_best(path: str) -> Optional[Dict]:
  """{trial_id, walk} of a best_architecture.json, or None (none, or one
  that does not say: it is only derived from the store, and rewritten)."""
  try:
    with open(path, encoding="utf-8") as f:
      info = json.load(f)
    trial_id = int(info["trial_id"])
  except (OSError, ValueError, TypeError, KeyError):
    return None
  walk = info.get("walk")
  try:
    walk = [int(a) for a in walk] if walk is not None else None
  except (TypeError, ValueError):
    walk = None
  return {"trial_id": trial_id, "walk": walk}


def _int(x) -> int:
  try:
    return int(x)
  except (TypeError, ValueError):
    return 0
