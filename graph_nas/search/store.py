"""The durable trial store: every finished trial in SQLite.

Each trial is written in its own transaction as soon as it finishes, so a
killed search loses at most the trials that were still running. The store is
the single source of truth of a search: resume, reports and plots read it.

A store opened with ``read_only=True`` (what only reads a run: the reports,
the DOT export) writes nothing in its folder, so an archived run in a
read-only folder reads too: no schema is created, no pragma is written, and
SQLite makes no ``-wal``/``-shm`` file. A store closed cleanly (no ``-wal``
file: no process has it open) is read as an immutable file; one with a
``-wal`` file (a search running now, or one that was killed) is read through
SQLite's shared WAL index like any reader's, and where that cannot be opened
(a read-only folder without the ``-shm`` file) from a private copy of the
store and its WAL in a temporary folder, so no finished trial is missed.
Columns and tables that an older store lacks read as NULL / empty.

Every writable open gives a store without one a random ``run_id`` (meta);
the search writes it into its checkpoint too
(graph_nas.search.run_folder.checkpoint_extra), so a checkpoint of another
run is recognised (graph_nas.search.run_folder.check_folder).
"""

import json
import os
import pathlib
import shutil
import sqlite3
import tempfile
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Sequence

from graph_nas.errors import GraphNasError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trials (
  trial_id INTEGER PRIMARY KEY,
  batch INTEGER NOT NULL,
  walk TEXT NOT NULL,
  config TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
  reason TEXT NOT NULL DEFAULT '',
  reward REAL,
  metrics TEXT NOT NULL DEFAULT '{}',
  seed INTEGER NOT NULL,
  started REAL NOT NULL,
  finished REAL NOT NULL,
  seconds REAL NOT NULL,
  cached_from INTEGER,
  rung INTEGER,
  budget_fraction REAL
);
CREATE INDEX IF NOT EXISTS trials_by_config ON trials (config);
CREATE TABLE IF NOT EXISTS rungs (
  job_key TEXT NOT NULL,
  rung INTEGER NOT NULL,
  fraction REAL NOT NULL,
  value REAL NOT NULL,
  go_on INTEGER NOT NULL,
  recorded REAL NOT NULL,
  trial_id INTEGER,
  PRIMARY KEY (job_key, rung)
);
CREATE TABLE IF NOT EXISTS screened (
  screen_key TEXT NOT NULL,
  position INTEGER NOT NULL,
  walk TEXT NOT NULL,
  config TEXT NOT NULL,
  score REAL,
  scorer TEXT NOT NULL,
  chosen INTEGER NOT NULL,
  explored INTEGER NOT NULL,
  recorded REAL NOT NULL,
  PRIMARY KEY (screen_key, position)
);
CREATE TABLE IF NOT EXISTS asked (
  trial_id INTEGER PRIMARY KEY,
  walk TEXT NOT NULL,
  config TEXT NOT NULL,
  seed INTEGER NOT NULL,
  proposed_at_update INTEGER NOT NULL,
  asked REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS enqueued (
  position INTEGER PRIMARY KEY,
  walk TEXT NOT NULL,
  config TEXT NOT NULL,
  recorded REAL NOT NULL,
  trial_id INTEGER
);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
"""


RUN_ID_KEY = "run_id"  # in the meta: the run's random id


class TrialStore:
  """SQLite-backed record of a search's trials and settings."""

  def __init__(self, path: str, sync: bool = True, read_only: bool = False):
    """sync: each trial's transaction reaches the disk before the search
    goes on (survives a power loss). With sync=False a trial still survives
    the search process being killed (SQLite's WAL), but an operating-system
    crash can lose the last ones; for many trials of a few milliseconds
    (toy tasks), where the disk flush would cost more than the trial.

    read_only: open an existing store to read it, writing nothing in its
    folder (see the module docstring); the write methods raise. A missing
    file, or one that is not a trial store, is a GraphNasError naming it.
    """
    self.path = str(path)
    self.read_only = read_only
    self._copy_dir = None
    if read_only:
      self._open_read_only()
      return
    path = self.path
    try:
      self._conn = sqlite3.connect(path, timeout=30)
      self._conn.execute("PRAGMA journal_mode=WAL")
      self._conn.execute(f"PRAGMA synchronous={'FULL' if sync else 'NORMAL'}")
      self._conn.executescript(_SCHEMA)
      columns = [r[1] for r in self._conn.execute(
          "PRAGMA table_info(trials)")]
      # Columns of a store written before they existed.
      for name, kind in (("cached_from", "INTEGER"), ("rung", "INTEGER"),
                         ("budget_fraction", "REAL")):
        if name not in columns:
          self._conn.execute(f"ALTER TABLE trials ADD COLUMN {name} {kind}")
      self._conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                         (RUN_ID_KEY, json.dumps(uuid.uuid4().hex)))
      self._conn.commit()
    except sqlite3.DatabaseError as e:
      raise GraphNasError(f"cannot open the trial store: {e}",
                          source=path) from None
    self._tables = {"trials", "rungs", "screened", "asked", "enqueued",
                    "meta"}
    self._source = "trials"

  def _open_read_only(self):
    path = self.path
    if not os.path.isfile(path):
      raise GraphNasError("cannot open the trial store: no such file",
                          source=path)
    uri = pathlib.Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    wal, shm = (os.path.exists(path + suffix) for suffix in ("-wal", "-shm"))
    try:
      if not wal:
        # Closed cleanly, no process has it open: the file is the whole
        # store. As immutable, SQLite reads it without a -shm file.
        self._conn = sqlite3.connect(uri + "&immutable=1", uri=True,
                                     timeout=30)
        self._describe()
        return
      if shm:  # a search has it open now (or was killed): share its index
        try:
          self._conn = sqlite3.connect(uri, uri=True, timeout=30)
          self._describe()
          return
        except sqlite3.OperationalError:
          self.close()
      self._conn = self._connect_copy()
      self._describe()
    except GraphNasError:
      self.close()
      raise
    except (sqlite3.DatabaseError, OSError) as e:
      self.close()
      raise GraphNasError(f"cannot open the trial store: {e}",
                          source=path) from None

  def _connect_copy(self):
    """A connection to a private copy of the store and its WAL: SQLite
    cannot read the WAL in place without its -shm index, which it would
    have to create in the folder."""
    self._copy_dir = tempfile.mkdtemp(prefix="graph_nas_store_")
    copy = os.path.join(self._copy_dir, "trials.sqlite")
    shutil.copyfile(self.path, copy)
    try:
      shutil.copyfile(self.path + "-wal", copy + "-wal")
    except FileNotFoundError:  # the search closed it meanwhile
      pass
    conn = sqlite3.connect(copy, timeout=30)
    conn.execute("PRAGMA query_only=1")
    return conn

  def _describe(self):
    """The tables and trials columns this (read-only) store has; older
    stores lack some, which read as empty / NULL."""
    self._tables = {r[0] for r in self._conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "trials" not in self._tables:
      raise GraphNasError("cannot open the trial store: not a trial store "
                          "(it has no trials table)", source=self.path)
    columns = {r[1] for r in self._conn.execute("PRAGMA table_info(trials)")}
    self._source = "trials"
    if not set(_KEYS) <= columns:
      self._source = "(SELECT {} FROM trials) AS trials".format(", ".join(
          k if k in columns else f"NULL AS {k}" for k in _KEYS))

  def _writable(self):
    if self.read_only:
      raise GraphNasError("the trial store was opened read-only",
                          source=self.path)

  def close(self):
    conn = getattr(self, "_conn", None)
    if conn is not None:
      conn.close()
      self._conn = None
    if self._copy_dir:
      shutil.rmtree(self._copy_dir, ignore_errors=True)
      self._copy_dir = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  # ------------------------------------------------------------------ meta
  def get_meta(self, key: str) -> Optional[Any]:
    if "meta" not in self._tables:
      return None
    row = self._conn.execute("SELECT value FROM meta WHERE key = ?",
                             (key,)).fetchone()
    return None if row is None else json.loads(row[0])

  @property
  def run_id(self) -> Optional[str]:
    """The run's random id (None: a store from before run ids, read
    read-only)."""
    return self.get_meta(RUN_ID_KEY)

  def set_meta(self, key: str, value: Any) -> None:
    self._writable()
    with self._conn:
      self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                         (key, json.dumps(value)))

  # ---------------------------------------------------------------- trials
  def add_trial(self, *, trial_id: int, batch: int, walk, config: dict,
                status: str, reward: Optional[float], seed: int,
                started: float, reason: str = "",
                metrics: Optional[dict] = None,
                finished: Optional[float] = None,
                cached_from: Optional[int] = None,
                rung: Optional[int] = None,
                budget_fraction: Optional[float] = None) -> None:
    """Records one finished trial in its own transaction.

    cached_from: the trial whose result this one reuses (the same
    architecture evaluated before in this search), or None.
    rung, budget_fraction: with early stopping (graph_nas.search.halving),
    the highest rung the child reached and the share of its training
    budget it was trained (1.0: the whole); None without it.
    """
    self._writable()
    finished = time.time() if finished is None else finished
    try:
      with self._conn:
        self._conn.execute(
            "INSERT INTO trials (trial_id, batch, walk, config, status, "
            "reason, reward, metrics, seed, started, finished, seconds, "
            "cached_from, rung, budget_fraction) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (trial_id, batch, json.dumps(list(walk)), config_key(config),
             status, reason, reward, json.dumps(metrics or {},
                                                default=_jsonable),
             seed, started, finished, finished - started, cached_from,
             rung, budget_fraction))
        # A trial asked through graph_nas.study is told: no longer asked.
        self._conn.execute("DELETE FROM asked WHERE trial_id = ?",
                           (trial_id,))
    except sqlite3.IntegrityError:
      raise GraphNasError(f"trial {trial_id} is already in the store",
                          source=self.path) from None

  def trials(self, status: Optional[str] = None) -> List[Dict]:
    sql = f"SELECT {_COLUMNS} FROM {self._source}"
    args = ()
    if status:
      sql += " WHERE status = ?"
      args = (status,)
    return [self._row(r) for r in self._conn.execute(sql + " ORDER BY "
                                                     "trial_id", args)]

  def fresh_ok_ids(self) -> List[int]:
    """The ids of the successful trials evaluated afresh (not reusing an
    earlier trial's result), in order; no row is decoded (cheap)."""
    return [r[0] for r in self._conn.execute(
        f"SELECT trial_id FROM {self._source} WHERE status = 'ok' AND "
        "cached_from IS NULL ORDER BY trial_id")]

  def trials_of(self, ids: Sequence[int]) -> List[Dict]:
    """The trials of these ids, in id order (a stored trial never changes:
    rows are inserted once, when the trial ends)."""
    out = []
    ids = list(ids)
    for i in range(0, len(ids), 500):  # SQLite's limit on parameters
      chunk = ids[i:i + 500]
      out += [self._row(r) for r in self._conn.execute(
          f"SELECT {_COLUMNS} FROM {self._source} WHERE trial_id IN "
          f"({','.join('?' * len(chunk))})", chunk)]
    return sorted(out, key=lambda r: r["trial_id"])

  def trial(self, trial_id: int) -> Optional[Dict]:
    r = self._conn.execute(f"SELECT {_COLUMNS} FROM {self._source} WHERE "
                           "trial_id = ?",
                           (trial_id,)).fetchone()
    return None if r is None else self._row(r)

  def count(self) -> int:
    return self._conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]

  def best(self, n: int = 1) -> List[Dict]:
    """The n best successful trials trained to the full budget, one per
    architecture (cached repeats of an architecture, and children stopped
    early, are left out)."""
    rows = self._conn.execute(
        f"SELECT {_COLUMNS} FROM {self._source} WHERE status = 'ok' AND "
        "cached_from IS NULL AND COALESCE(budget_fraction, 1.0) >= 1.0 "
        "ORDER BY reward DESC, trial_id LIMIT ?", (n,))
    return [self._row(r) for r in rows]

  def find_config(self, config: dict) -> Optional[Dict]:
    """The first successful, freshly evaluated trial of `config`, or None."""
    r = self._conn.execute(
        f"SELECT {_COLUMNS} FROM {self._source} WHERE config = ? AND "
        "status = 'ok' "
        "AND cached_from IS NULL ORDER BY trial_id LIMIT 1",
        (config_key(config),)).fetchone()
    return None if r is None else self._row(r)

  # ----------------------------------------------------------------- rungs
  def add_rung(self, job_key: str, rung: int, fraction: float, value: float,
               go_on: bool, trial_id: Optional[int] = None) -> None:
    """Records a child's score at a rung and the decision taken on it, in
    its own transaction, before the child is told (a killed search keeps
    every decided rung). A (job_key, rung) recorded before is kept."""
    self._writable()
    with self._conn:
      self._conn.execute(
          "INSERT OR IGNORE INTO rungs VALUES (?,?,?,?,?,?,?)",
          (job_key, rung, fraction, value, int(go_on), time.time(),
           trial_id))

  def name_rungs(self, job_key: str, trial_id: int) -> None:
    """Gives a finished child's rung records its trial id."""
    self._writable()
    with self._conn:
      self._conn.execute("UPDATE rungs SET trial_id = ? WHERE job_key = ?",
                         (trial_id, job_key))

  def rungs(self) -> List[Dict]:
    """Every rung record, in the order they were taken."""
    keys = ("job_key", "rung", "fraction", "value", "go_on", "recorded",
            "trial_id")
    if "rungs" not in self._tables:
      return []
    return [dict(zip(keys, r)) for r in self._conn.execute(
        f"SELECT {', '.join(keys)} FROM rungs ORDER BY recorded, rowid")]

  # -------------------------------------------------------------- screened
  def add_screened(self, screen_key: str, rows: List[Dict]) -> None:
    """Records one screening (graph_nas.search.screening): every candidate
    with its cheap score and whether it was chosen for evaluation (and
    whether as exploration), in one transaction. A screening recorded
    before under the same key (a resumed batch) is kept as it was."""
    self._writable()
    now = time.time()
    with self._conn:
      self._conn.executemany(
          "INSERT OR IGNORE INTO screened VALUES (?,?,?,?,?,?,?,?,?)",
          [(screen_key, i, json.dumps([int(a) for a in r["walk"]]),
            config_key(r["config"]) if r.get("config") is not None
            else "null", _finite_or_none(r.get("score")), r["scorer"],
            int(bool(r["chosen"])), int(bool(r.get("explored"))), now)
           for i, r in enumerate(rows)])

  def screened(self, chosen: Optional[bool] = None) -> List[Dict]:
    """Every screened candidate (chosen=False: those screened out, never
    trials), in the order they were recorded."""
    keys = ("screen_key", "position", "walk", "config", "score", "scorer",
            "chosen", "explored", "recorded")
    if "screened" not in self._tables:
      return []
    sql = f"SELECT {', '.join(keys)} FROM screened"
    args = ()
    if chosen is not None:
      sql += " WHERE chosen = ?"
      args = (int(chosen),)
    out = []
    for r in self._conn.execute(sql + " ORDER BY recorded, rowid", args):
      d = dict(zip(keys, r))
      d["walk"] = tuple(json.loads(d["walk"]))
      d["config"] = json.loads(d["config"])
      d["chosen"], d["explored"] = bool(d["chosen"]), bool(d["explored"])
      out.append(d)
    return out

  # ------------------------------------------------ asked (ask and tell)
  def add_asked(self, *, trial_id: int, walk, config: dict, seed: int,
                proposed_at_update: int) -> None:
    """Records a trial handed out by a Study's ask() (graph_nas.study) and
    not yet told, in its own transaction: a reopened study asks it again.
    Telling it (add_trial with its id) removes the record."""
    self._writable()
    with self._conn:
      self._conn.execute(
          "INSERT INTO asked VALUES (?,?,?,?,?,?)",
          (trial_id, json.dumps([int(a) for a in walk]), config_key(config),
           seed, proposed_at_update, time.time()))

  def asked(self) -> List[Dict]:
    """The trials asked and not told, by trial id."""
    keys = ("trial_id", "walk", "config", "seed", "proposed_at_update",
            "asked")
    if "asked" not in self._tables:
      return []
    out = []
    for r in self._conn.execute(f"SELECT {', '.join(keys)} FROM asked "
                                "ORDER BY trial_id"):
      d = dict(zip(keys, r))
      d["walk"] = tuple(json.loads(d["walk"]))
      d["config"] = json.loads(d["config"])
      out.append(d)
    return out

  def next_trial_id(self) -> int:
    """One above every trial id stored or asked (0 for an empty store)."""
    ids = [self._conn.execute("SELECT MAX(trial_id) FROM trials")
           .fetchone()[0]]
    if "asked" in self._tables:
      ids.append(self._conn.execute("SELECT MAX(trial_id) FROM asked")
                 .fetchone()[0])
    return max([i for i in ids if i is not None], default=-1) + 1

  # -------------------------------------------------------------- enqueued
  def add_enqueued(self, walk, config: dict) -> int:
    """Queues a known architecture to be asked before the algorithm's
    proposals (graph_nas.study); returns its position."""
    self._writable()
    with self._conn:
      cur = self._conn.execute(
          "INSERT INTO enqueued (walk, config, recorded) VALUES (?,?,?)",
          (json.dumps([int(a) for a in walk]), config_key(config),
           time.time()))
    return cur.lastrowid

  def enqueued(self, taken: Optional[bool] = None) -> List[Dict]:
    """The queued architectures in order (taken=False: not yet asked)."""
    keys = ("position", "walk", "config", "recorded", "trial_id")
    if "enqueued" not in self._tables:
      return []
    sql = f"SELECT {', '.join(keys)} FROM enqueued"
    if taken is not None:
      sql += " WHERE trial_id IS NOT NULL" if taken else \
          " WHERE trial_id IS NULL"
    out = []
    for r in self._conn.execute(sql + " ORDER BY position"):
      d = dict(zip(keys, r))
      d["walk"] = tuple(json.loads(d["walk"]))
      d["config"] = json.loads(d["config"])
      out.append(d)
    return out

  def take_enqueued(self, position: int, trial_id: int) -> None:
    """Marks a queued architecture as asked (as trial `trial_id`)."""
    self._writable()
    with self._conn:
      self._conn.execute("UPDATE enqueued SET trial_id = ? WHERE "
                         "position = ?", (trial_id, position))

  def __iter__(self) -> Iterator[Dict]:
    return iter(self.trials())

  @staticmethod
  def _row(r) -> Dict:
    d = dict(zip(_KEYS, r))
    d["walk"] = tuple(json.loads(d["walk"]))
    d["config"] = json.loads(d["config"])
    d["metrics"] = json.loads(d["metrics"])
    return d


_KEYS = ("trial_id", "batch", "walk", "config", "status", "reason", "reward",
         "metrics", "seed", "started", "finished", "seconds", "cached_from",
         "rung", "budget_fraction")
_COLUMNS = ", ".join(_KEYS)


def config_key(config: dict) -> str:
  """The canonical JSON text of a config (equal configs, equal texts)."""
  return json.dumps(config, sort_keys=True, default=_jsonable)


def _finite_or_none(x) -> Optional[float]:
  if x is None:
    return None
  x = float(x)
  return x if x == x and abs(x) != float("inf") else None


def _jsonable(x):
  try:
    return float(x)
  except (TypeError, ValueError):
    return str(x)
