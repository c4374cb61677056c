"""Stored runs of earlier versions still resume with today's code."""

import shutil
import sqlite3

from graph_nas.search import checkpoint, run_folder
from graph_nas.search.store import TrialStore
from tests.conftest import ROOT
from tests.folder_helpers import snapshot
from tests.launch_helpers import launch

OLD_RUN = ROOT / "tests" / "data" / "stack_layers_run_e0840fe"


def _rows(db):
  with sqlite3.connect(db) as conn:
    return conn.execute("SELECT trial_id, walk, status, reward FROM trials "
                        "ORDER BY trial_id").fetchall()


def test_a_run_of_the_flat_layout_resumes(tmp_path):
  out = tmp_path / "run"
  shutil.copytree(OLD_RUN, out)
  before = _rows(out / "trials.sqlite")
  assert [r[0] for r in before] == list(range(6))
  r = launch(["--space=protos/stack_layers.textproto",
              "--algorithm=reinforce", "--max_trials=12",
              "--walks_per_update=3", f"--out_dir={out}"])
  assert r.returncode == 0, r.stderr[-3000:]
  assert "resuming" in r.stderr and "6 trials in the store, 2 updates" \
      in r.stderr
  after = _rows(out / "trials.sqlite")
  assert after[:6] == before  # nothing lost, nothing repeated
  assert [r[0] for r in after] == list(range(12))
  assert all(r[2] == "ok" for r in after)
  # The old store got a run id, which the new checkpoint carries.
  extra = checkpoint.read(str(out / "checkpoint.npz"))[1]["extra"]
  with TrialStore(str(out / "trials.sqlite"), read_only=True) as store:
    assert extra[checkpoint.RUN_ID_KEY] == store.run_id is not None
    assert extra[checkpoint.TRIALS_KEY] == 12
  # Another algorithm on the same folder is one clear line.
  r = launch(["--space=protos/stack_layers.textproto", "--algorithm=pqt",
              "--max_trials=12", "--walks_per_update=3", f"--out_dir={out}"])
  assert r.returncode != 0
  errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
  assert errors == [f"error: {out} holds a search with --algorithm="
                    "reinforce, not pqt: use another --out_dir or the same "
                    "settings to resume"], r.stderr[-2000:]


def test_a_run_of_the_flat_layout_is_read_without_a_write(tmp_path):
  # Its checkpoint says neither run id nor trial count: accepted as it
  # was (2 updates of 3 walks: at least 4 trials; the store holds 6), and
  # the old store (no rung columns, no rungs table) reads read-only.
  out = tmp_path / "run"
  shutil.copytree(OLD_RUN, out)
  before = snapshot(out)
  run_folder.check_folder(out)
  with TrialStore(str(out / "trials.sqlite"), read_only=True) as store:
    rows = store.trials()
    assert [r["trial_id"] for r in rows] == list(range(6))
    assert all(r["rung"] is None and r["budget_fraction"] is None
               for r in rows)
    assert store.rungs() == [] and store.run_id is None
  assert snapshot(out) == before
