"""Nothing lost, ever: a run folder whose files disagree is refused.

graph_nas.search.run_folder.check_folder runs first in Search.__init__,
before the folder's lock and store are created: a checkpoint whose trials
are not in the store (deleted, emptied, fewer), a checkpoint or a
best_architecture.json of another run, a damaged checkpoint -- each is one
line naming the files and what to do, and the folder is left exactly as it
was (tests/folder_helpers.snapshot: every file's bytes and mtime, every
folder's listing and mtime).

The folders are real: tiny random searches through graph_nas.api.search.
"""

import json
import os
import shutil
import sqlite3

import numpy as np
import pytest

from graph_nas import api
from graph_nas.errors import GraphNasError, RunFolderConflict
from graph_nas.search import checkpoint, run_folder
from graph_nas.search.store import TrialStore
from tests import api_rewards
from tests.folder_helpers import read_only_folder, snapshot
from tests.test_api import stack_layers_builder

SETTINGS = dict(algorithm="random", walks_per_update=2, tensorboard=False)


def _search(out, max_trials=6, seed=0):
  return api.search(stack_layers_builder(), api_rewards.reward, str(out),
                    max_trials=max_trials, seed=seed, **SETTINGS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Two finished runs of 6 trials (3 updates of 2), seeds 0 and 1."""
  root = tmp_path_factory.mktemp("runs")
  _search(root / "a", seed=0)
  _search(root / "b", seed=1)
  return root


@pytest.fixture
def run_a(runs, tmp_path):
  """A copy of run a to damage."""
  out = tmp_path / "a"
  shutil.copytree(runs / "a", out)
  return out


def _rows(out):
  with TrialStore(str(out / "trials.sqlite"), read_only=True) as store:
    return store.trials()


# ------------------------------------------------------------ damages
def _delete_store(out):
  os.remove(out / "trials.sqlite")


def _empty_store(out):
  (out / "trials.sqlite").write_bytes(b"")


def _drop_trials(out, keep=3):
  with sqlite3.connect(out / "trials.sqlite") as conn:
    conn.execute("DELETE FROM trials WHERE trial_id >= ?", (keep,))
  conn.close()


def _garbage_checkpoint(out):
  (out / "checkpoint.npz").write_bytes(b"\x00garbage" * 64)


def _pickled_checkpoint(out):
  # A zip a foreign tool wrote, with an object array: numpy's own message
  # would advise loading it unsafely.
  with open(out / "checkpoint.npz", "wb") as f:
    np.savez(f, __meta__=np.array([{"name": "random"}], dtype=object))


DISAGREE = {
    "store deleted": (_delete_store, "trials.sqlite is missing"),
    "store emptied": (_empty_store, "trials.sqlite is empty (0 bytes)"),
    "store with 3 of 6 trials": (_drop_trials, "but trials.sqlite holds 3"),
}
DAMAGED = {
    "garbage": (_garbage_checkpoint, "not an .npz archive"),
    "pickled": (_pickled_checkpoint, "pickled (object) data"),
}


def _one_line(error, out, *words):
  msg = str(error)
  assert "\n" not in msg, msg
  assert msg.startswith(f"{out}: "), msg
  for word in words:
    assert word in msg, msg
  assert "allow_pickle" not in msg
  return msg


def _stamp(out, runs, name="b"):
  """Puts run `name`'s checkpoint in `out`, carrying its run id and trial
  count as a search's checkpoint does (run_folder.checkpoint_extra)."""
  arrays, meta = checkpoint.read(str(runs / name / "checkpoint.npz"))
  with TrialStore(str(runs / name / "trials.sqlite"),
                  read_only=True) as store:
    extra = run_folder.checkpoint_extra(
        store, **meta.pop(checkpoint.EXTRA_KEY, {}))
  checkpoint.write(str(out / "checkpoint.npz"), arrays, meta, extra)


# ------------------------------------------------------------ the check
def test_agreeing_folders_pass(runs, tmp_path):
  run_folder.check_folder(runs / "a")  # a finished run
  run_folder.check_folder(tmp_path / "new")  # no folder yet
  run_folder.check_folder(tmp_path)  # an empty folder
  killed = tmp_path / "killed"  # killed before its first update
  shutil.copytree(runs / "a", killed)
  os.remove(killed / "checkpoint.npz")
  run_folder.check_folder(killed)
  assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("case", sorted(DISAGREE))
def test_checkpoint_without_its_trials_is_refused(run_a, case):
  damage, words = DISAGREE[case]
  damage(run_a)
  before = snapshot(run_a)
  with pytest.raises(RunFolderConflict) as info:
    run_folder.check_folder(run_a)
  _one_line(info.value, run_a, "checkpoint.npz was written after 3 updates",
            words, "put this run's trials.sqlite back",
            "use another output folder")
  assert snapshot(run_a) == before


def test_checkpoint_of_another_run_is_refused(runs, run_a):
  _stamp(run_a, runs, "b")
  before = snapshot(run_a)
  with pytest.raises(RunFolderConflict) as info:
    run_folder.check_folder(run_a)
  with TrialStore(str(runs / "b" / "trials.sqlite"), read_only=True) as b:
    theirs = b.run_id
  with TrialStore(str(run_a / "trials.sqlite"), read_only=True) as a:
    ours = a.run_id
  _one_line(info.value, run_a, "checkpoint.npz is of another run than "
            f"trials.sqlite (run id {theirs}, the store's {ours})",
            "put this run's checkpoint.npz back", "move it away")
  assert snapshot(run_a) == before
  # Its own checkpoint, stamped the same way, passes.
  _stamp(run_a, runs, "a")
  run_folder.check_folder(run_a)


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_checkpoint_is_one_line_naming_it(run_a, case):
  damage, words = DAMAGED[case]
  damage(run_a)
  before = snapshot(run_a)
  with pytest.raises(RunFolderConflict) as info:
    run_folder.check_folder(run_a)
  _one_line(info.value, run_a, "checkpoint.npz cannot be read: ", words,
            "(a damaged file, or not a checkpoint)",
            "move it away to resume from the trials in trials.sqlite")
  # Reading it elsewhere (the policy reader) says the same, naming it.
  with pytest.raises(GraphNasError) as info:
    checkpoint.read(str(run_a / "checkpoint.npz"))
  _one_line(info.value, run_a / "checkpoint.npz", words)
  assert snapshot(run_a) == before


def test_results_of_another_run_are_refused(runs, run_a):
  # Checkpoint gone too: best_architecture.json still says there were
  # trials, and a search would overwrite it.
  os.remove(run_a / "checkpoint.npz")
  _delete_store(run_a)
  before = snapshot(run_a)
  with pytest.raises(RunFolderConflict) as info:
    run_folder.check_folder(run_a)
  best = json.loads((runs / "a" / "best_architecture.json").read_text())
  _one_line(info.value, run_a, f"best_architecture.json names trial "
            f"{best['trial_id']}, but trials.sqlite is missing")
  assert snapshot(run_a) == before
  # A store whose trial of that id is another architecture.
  shutil.copyfile(runs / "a" / "trials.sqlite", run_a / "trials.sqlite")
  run_folder.check_folder(run_a)  # its own store: agrees
  with sqlite3.connect(run_a / "trials.sqlite") as conn:
    conn.execute("UPDATE trials SET walk = '[9, 9]' WHERE trial_id = ?",
                 (best["trial_id"],))
  conn.close()
  with pytest.raises(RunFolderConflict) as info:
    run_folder.check_folder(run_a)
  _one_line(info.value, run_a, f"trials.sqlite's trial {best['trial_id']} "
            "has [9, 9]: the two are of different runs")


def test_check_reads_a_folder_where_nothing_may_be_written(runs, tmp_path):
  out = tmp_path / "archived"
  shutil.copytree(runs / "a", out)
  before = snapshot(out)
  with read_only_folder(out):
    run_folder.check_folder(out)
    with TrialStore(str(out / "trials.sqlite"), read_only=True) as store:
      assert store.count() == 6
  assert snapshot(out) == before


# ----------------------------------------------------- through a search
@pytest.mark.parametrize("case", sorted(DISAGREE))
def test_search_refuses_before_creating_anything(run_a, case):
  # The case: rerunning the same command on a folder whose store
  # was deleted or emptied started a fresh store and overwrote
  # best_architecture.json. The lock file is gone too here: the refusal
  # comes before it is created.
  damage, words = DISAGREE[case]
  damage(run_a)
  os.remove(run_a / "search.lock")
  before = snapshot(run_a)
  with pytest.raises(RunFolderConflict) as info:
    _search(run_a, max_trials=10)
  _one_line(info.value, run_a, words)
  assert snapshot(run_a) == before


def test_search_checkpoints_carry_the_run_id_and_trials(runs, run_a):
  for name in ("a", "b"):
    meta = checkpoint.read(str(runs / name / "checkpoint.npz"))[1]
    extra = meta[checkpoint.EXTRA_KEY]
    with TrialStore(str(runs / name / "trials.sqlite"),
                    read_only=True) as store:
      assert extra[checkpoint.RUN_ID_KEY] == store.run_id
      assert extra[checkpoint.TRIALS_KEY] == store.count() == 6
  # Resuming an agreeing folder goes on, nothing lost; the new checkpoint
  # counts the new trials.
  before = _rows(run_a)
  _search(run_a, max_trials=10)
  after = _rows(run_a)
  assert after[:6] == before and len(after) == 10
  meta = checkpoint.read(str(run_a / "checkpoint.npz"))[1]
  assert meta[checkpoint.EXTRA_KEY][checkpoint.TRIALS_KEY] == 10
  # The exact count: one trial missing of ten is refused.
  _drop_trials(run_a, keep=9)
  with pytest.raises(RunFolderConflict, match="but trials.sqlite holds 9"):
    _search(run_a, max_trials=12)


def test_search_refuses_another_runs_checkpoint(runs, run_a):
  shutil.copyfile(runs / "b" / "checkpoint.npz", run_a / "checkpoint.npz")
  before = snapshot(run_a)
  with pytest.raises(RunFolderConflict, match="is of another run"):
    _search(run_a, max_trials=10)
  assert snapshot(run_a) == before


def test_damaged_checkpoint_moved_away_resumes_from_the_store(run_a):
  _garbage_checkpoint(run_a)
  before = snapshot(run_a)
  with pytest.raises(RunFolderConflict, match="checkpoint.npz cannot be "
                     "read"):
    _search(run_a, max_trials=10)
  assert snapshot(run_a) == before
  # What the line says to do works: the stored trials are kept.
  stored = _rows(run_a)
  os.rename(run_a / "checkpoint.npz", run_a / "checkpoint.npz.damaged")
  _search(run_a, max_trials=10)
  after = _rows(run_a)
  assert after[:6] == stored and len(after) == 10
