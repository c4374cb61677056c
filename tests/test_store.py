"""graph_nas.search.store: the trial store, and reading it without writing.

Reading a run never needs write access: TrialStore(path, read_only=True)
reads a store in a folder where nothing may be written (an archived run)
and leaves the folder exactly as it was -- checked by the folder's snapshot
(every file's bytes and mtime, every folder's listing and mtime; the tests
run as root, where chmod stops nothing) and, where the file system allows,
with the folder made immutable (tests/folder_helpers.py).
"""

import os
import shutil
import sqlite3

import pytest

from graph_nas.errors import GraphNasError
from graph_nas.search.store import TrialStore
from tests.folder_helpers import read_only_folder, snapshot


def _fill(store, n, first=0):
  for i in range(first, first + n):
    store.add_trial(trial_id=i, batch=i // 2, walk=[i % 3, 1],
                    config={"layers": i}, status="ok" if i % 4 else "failed",
                    reward=i / 10 if i % 4 else None, seed=i, started=1.0,
                    finished=2.0, metrics={"loss": 1.0 / (i + 1)},
                    cached_from=None, rung=None, budget_fraction=None)


def _written_store(folder, n=6):
  """A store as a finished search leaves it: trials, a rung, a screening
  and meta, closed."""
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(str(folder), "trials.sqlite")
  with TrialStore(path) as store:
    _fill(store, n)
    store.add_rung("t1", 0, 0.25, 0.5, True, trial_id=1)
    store.add_screened("s0", [{"walk": [0, 1], "config": {"layers": 0},
                               "score": 0.5, "scorer": "params",
                               "chosen": True}])
    store.set_meta("identity", {"walks_per_update": 2})
  return path


def _everything(store):
  return {"trials": store.trials(), "ok": store.trials("ok"),
          "count": store.count(), "best": store.best(3),
          "trial": store.trial(2), "find": store.find_config({"layers": 1}),
          "rungs": store.rungs(), "screened": store.screened(),
          "identity": store.get_meta("identity"), "run_id": store.run_id}


def test_fresh_ok_ids_and_trials_of_read_what_trials_reads(tmp_path):
  """The loop's incremental read of the trials a predictor fits on: the
  fresh successful ids, then their rows, equal to trials("ok") without
  the cached repeats, in id order, in chunks past SQLite's parameters."""
  with TrialStore(str(tmp_path / "t.sqlite")) as store:
    _fill(store, 1203)
    store.add_trial(trial_id=1203, batch=0, walk=[0, 1], config={"layers": 1},
                    status="ok", reward=0.1, seed=0, started=1.0,
                    cached_from=1)
    ids = store.fresh_ok_ids()
    want = [r for r in store.trials("ok") if r["cached_from"] is None]
    assert ids == [r["trial_id"] for r in want] and 1203 not in ids
    assert store.trials_of(ids[::-1]) == want
    assert store.trials_of([]) == []


def test_a_store_gets_a_run_id_once(tmp_path):
  path = str(tmp_path / "trials.sqlite")
  with TrialStore(path) as store:
    first = store.run_id
  assert isinstance(first, str) and len(first) == 32
  with TrialStore(path) as store:
    assert store.run_id == first  # reopening keeps it
  with TrialStore(str(tmp_path / "other.sqlite")) as other:
    assert other.run_id != first


def test_read_only_reads_a_closed_store_in_a_read_only_folder(tmp_path):
  folder = tmp_path / "archived"
  path = _written_store(folder)
  with TrialStore(path) as store:
    expected = _everything(store)
  assert expected["count"] == 6 and expected["rungs"]
  assert expected["screened"]
  before = snapshot(folder)
  with read_only_folder(folder) as how:
    with TrialStore(path, read_only=True) as store:
      assert _everything(store) == expected
    # The writable open, as before, cannot work here (where the folder
    # really is read-only).
    if how != "none":
      with pytest.raises(GraphNasError, match="cannot open the trial store"):
        TrialStore(path).set_meta("x", 1)
  assert snapshot(folder) == before
  print(f"folder made read-only by: {how}")


def test_read_only_reads_the_wal_of_a_killed_search(tmp_path):
  # A search killed with trials only in the WAL; the folder archived
  # without SQLite's -shm index (which SQLite would have to create).
  live = tmp_path / "live"
  path = _written_store(live, n=2)
  writer = TrialStore(path)
  _fill(writer, 3, first=2)
  try:
    assert os.path.getsize(path + "-wal") > 0
    folder = tmp_path / "killed"
    folder.mkdir()
    shutil.copyfile(path, folder / "trials.sqlite")
    shutil.copyfile(path + "-wal", folder / "trials.sqlite-wal")
  finally:
    writer.close()
  with TrialStore(path, read_only=True) as store:
    expected = _everything(store)
  assert expected["count"] == 5
  before = snapshot(folder)
  with read_only_folder(folder):
    store = TrialStore(str(folder / "trials.sqlite"), read_only=True)
    copy = store._copy_dir  # pylint: disable=protected-access
    try:
      assert _everything(store) == expected  # the WAL's trials too
    finally:
      store.close()
  assert copy and not os.path.exists(copy)  # its private copy is gone
  assert snapshot(folder) == before


def test_read_only_reads_a_store_a_search_is_writing(tmp_path):
  path = _written_store(tmp_path, n=2)
  writer = TrialStore(path)
  try:
    _fill(writer, 2, first=2)
    names = sorted(os.listdir(tmp_path))
    assert "trials.sqlite-wal" in names and "trials.sqlite-shm" in names
    with open(path, "rb") as f:
      db = f.read()
    with open(path + "-wal", "rb") as f:
      wal = f.read()
    with TrialStore(path, read_only=True) as reader:
      assert reader.count() == 4
      _fill(writer, 1, first=4)  # the search goes on meanwhile
      assert reader.count() == 5
      assert [r["trial_id"] for r in reader.trials()] == list(range(5))
    assert sorted(os.listdir(tmp_path)) == names
    with open(path, "rb") as f:
      assert f.read() == db  # the reader checkpointed nothing
    with open(path + "-wal", "rb") as f:
      assert f.read()[:len(wal)] == wal
  finally:
    writer.close()


def test_read_only_never_writes(tmp_path):
  path = _written_store(tmp_path)
  before = snapshot(tmp_path)
  with TrialStore(path, read_only=True) as store:
    writes = [lambda: store.set_meta("x", 1),
              lambda: _fill(store, 1, first=99),
              lambda: store.add_rung("t9", 0, 0.25, 0.1, False),
              lambda: store.name_rungs("t1", 3),
              lambda: store.add_screened("s9", [])]
    for write in writes:
      with pytest.raises(GraphNasError, match="opened read-only"):
        write()
  assert snapshot(tmp_path) == before


@pytest.mark.parametrize("content, words", [
    (None, "no such file"),
    (b"", "not a trial store"),
    (b"not a database at all " * 300, "file is not a database"),
])
def test_read_only_refuses_what_is_not_a_store_in_one_line(tmp_path, content,
                                                           words):
  path = tmp_path / "trials.sqlite"
  if content is not None:
    path.write_bytes(content)
  before = snapshot(tmp_path)
  with pytest.raises(GraphNasError) as info:
    TrialStore(str(path), read_only=True)
  msg = str(info.value)
  assert msg.startswith(f"{path}: cannot open the trial store: ")
  assert words in msg and "\n" not in msg
  assert snapshot(tmp_path) == before  # nothing created, even then


def test_read_only_store_of_an_odd_path(tmp_path):
  # The read-only open goes through an SQLite URI: characters a URI gives a
  # meaning to are the path's own.
  folder = tmp_path / "run 50% #1?x=y"
  path = _written_store(folder, n=3)
  before = snapshot(folder)
  with TrialStore(path, read_only=True) as store:
    assert store.count() == 3
  assert snapshot(folder) == before


def test_read_only_reads_what_an_older_store_lacks(tmp_path):
  # A store of an early version: no rung / budget / cache columns, no rungs
  # or screened table. Read-only it cannot be upgraded: they read as NULL
  # and as empty.
  path = str(tmp_path / "trials.sqlite")
  with sqlite3.connect(path) as conn:
    conn.executescript("""
      CREATE TABLE trials (trial_id INTEGER PRIMARY KEY, batch INTEGER,
        walk TEXT, config TEXT, status TEXT, reason TEXT, reward REAL,
        metrics TEXT, seed INTEGER, started REAL, finished REAL,
        seconds REAL);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
      INSERT INTO trials VALUES (0, 0, '[1]', '{"a": 1}', 'ok', '', 0.5,
        '{}', 0, 1.0, 2.0, 1.0);
      INSERT INTO trials VALUES (1, 0, '[0]', '{"a": 0}', 'ok', '', 0.7,
        '{}', 1, 1.0, 2.0, 1.0);
    """)
  conn.close()
  before = snapshot(tmp_path)
  with TrialStore(path, read_only=True) as store:
    rows = store.trials()
    assert [r["trial_id"] for r in rows] == [0, 1]
    assert all(r["rung"] is None and r["cached_from"] is None and
               r["budget_fraction"] is None for r in rows)
    assert [r["trial_id"] for r in store.best(2)] == [1, 0]
    assert store.find_config({"a": 1})["trial_id"] == 0
    assert store.rungs() == [] and store.screened() == []
    assert store.run_id is None
  assert snapshot(tmp_path) == before
