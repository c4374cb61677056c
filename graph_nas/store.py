"""The durable trial store: every finished trial in SQLite.

Each trial is written in its own transaction as soon as it finishes, so a
killed search loses at most the trials that were still running. The store is
the single source of truth of a search: resume, reports and plots read it.
"""

import json
import sqlite3
import time
from typing import Any, Dict, Iterator, List, Optional

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
  seconds REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
"""


class TrialStore:
  """SQLite-backed record of a search's trials and settings."""

  def __init__(self, path: str):
    self.path = path
    try:
      self._conn = sqlite3.connect(path, timeout=30)
      self._conn.execute("PRAGMA journal_mode=WAL")
      self._conn.execute("PRAGMA synchronous=FULL")
      self._conn.executescript(_SCHEMA)
      self._conn.commit()
    except sqlite3.DatabaseError as e:
      raise GraphNasError(f"cannot open the trial store: {e}",
                          source=path) from None

  def close(self):
    self._conn.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  # ------------------------------------------------------------------ meta
  def get_meta(self, key: str) -> Optional[Any]:
    row = self._conn.execute("SELECT value FROM meta WHERE key = ?",
                             (key,)).fetchone()
    return None if row is None else json.loads(row[0])

  def set_meta(self, key: str, value: Any) -> None:
    with self._conn:
      self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                         (key, json.dumps(value)))

  # ---------------------------------------------------------------- trials
  def add_trial(self, *, trial_id: int, batch: int, walk, config: dict,
                status: str, reward: Optional[float], seed: int,
                started: float, reason: str = "",
                metrics: Optional[dict] = None,
                finished: Optional[float] = None) -> None:
    """Records one finished trial in its own transaction."""
    finished = time.time() if finished is None else finished
    try:
      with self._conn:
        self._conn.execute(
            "INSERT INTO trials VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (trial_id, batch, json.dumps(list(walk)), json.dumps(config),
             status, reason, reward, json.dumps(metrics or {},
                                                default=_jsonable),
             seed, started, finished, finished - started))
    except sqlite3.IntegrityError:
      raise GraphNasError(f"trial {trial_id} is already in the store",
                          source=self.path) from None

  def trials(self, status: Optional[str] = None) -> List[Dict]:
    sql = "SELECT * FROM trials"
    args = ()
    if status:
      sql += " WHERE status = ?"
      args = (status,)
    return [self._row(r) for r in self._conn.execute(sql + " ORDER BY "
                                                     "trial_id", args)]

  def trial(self, trial_id: int) -> Optional[Dict]:
    r = self._conn.execute("SELECT * FROM trials WHERE trial_id = ?",
                           (trial_id,)).fetchone()
    return None if r is None else self._row(r)

  def count(self) -> int:
    return self._conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]

  def best(self, n: int = 1) -> List[Dict]:
    rows = self._conn.execute(
        "SELECT * FROM trials WHERE status = 'ok' ORDER BY reward DESC, "
        "trial_id LIMIT ?", (n,))
    return [self._row(r) for r in rows]

  def __iter__(self) -> Iterator[Dict]:
    return iter(self.trials())

  @staticmethod
  def _row(r) -> Dict:
    keys = ("trial_id", "batch", "walk", "config", "status", "reason",
            "reward", "metrics", "seed", "started", "finished", "seconds")
    d = dict(zip(keys, r))
    d["walk"] = tuple(json.loads(d["walk"]))
    d["config"] = json.loads(d["config"])
    d["metrics"] = json.loads(d["metrics"])
    return d


def _jsonable(x):
  try:
    return float(x)
  except (TypeError, ValueError):
    return str(x)
