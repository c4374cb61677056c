"""The toy experiment runner drives graph_nas.search.Search."""

import json
import subprocess
import sys

import numpy as np
import pytest

from graph_nas.cli import experiment
from graph_nas.errors import GraphNasError
from graph_nas.search.store import TrialStore
from tests.conftest import PROTOS, ROOT

ALGORITHM = experiment.paper_algorithm(learning_rate=0.01,
                                       entropy_weight=0.1)
FORM_ARGS = dict(algorithm=ALGORITHM, replicas=2, trials=12,
                 walks_per_update=3, seed=5, spaces_dir=str(PROTOS),
                 log_every=False)


def test_each_replica_is_a_search_with_its_store(tmp_path):
  runs = experiment.run_form("graph", "stack_layers", out=str(tmp_path),
                             **FORM_ARGS)
  assert len(runs) == 2 and all(len(r) == 12 for r in runs)
  for i, rewards in enumerate(runs):
    with TrialStore(str(tmp_path / "graph" / f"replica_{i}" /
                        "trials.sqlite")) as store:
      rows = store.trials()
      identity = store.get_meta("identity")
    assert [r["trial_id"] for r in rows] == list(range(12))
    assert identity["seed"] == 5 + i
    # 3 walks per update: trials 0-2 were proposed before the first update.
    assert [r["batch"] for r in rows] == [k // 3 for k in range(12)]
    assert rewards == [r["reward"] for r in rows]
    assert all(0.0 <= r <= 1.0 for r in rewards)
  assert runs[0] != runs[1]  # different seeds, different searches


def test_best_so_far_counts_failed_trials_as_nothing():
  nan = float("nan")
  assert experiment.best_so_far([nan, 0.2, 0.1, nan, 0.5]) == [
      -np.inf, 0.2, 0.2, 0.2, 0.5]


def test_rerun_resumes_and_extends_the_replicas(tmp_path):
  short = experiment.run_form("linear", "stack_layers", out=str(tmp_path),
                              **FORM_ARGS)
  args = dict(FORM_ARGS, trials=18)
  longer = experiment.run_form("linear", "stack_layers", out=str(tmp_path),
                               **args)
  fresh = experiment.run_form("linear", "stack_layers",
                              out=str(tmp_path / "fresh"), **args)
  assert [c[:12] for c in longer] == short
  assert longer == fresh  # resuming is the same as running 18 at once


def test_random_form_and_entropy_modes(tmp_path):
  rnd = experiment.run_form("random", "select_optimizer_b2",
                            out=str(tmp_path), **FORM_ARGS)
  assert all(len(c) == 12 for c in rnd)
  for mode in ("mean", "normalized"):
    curves = experiment.run_form(
        "graph", "select_optimizer_b2", out=str(tmp_path / mode),
        **dict(FORM_ARGS, algorithm=ALGORITHM.replace(entropy_mode=mode)))
    assert all(len(c) == 12 for c in curves)


def test_settings_of_a_folder_are_checked(tmp_path):
  settings = {"task": "stack_layers", "learning_rate": 0.001}
  experiment.check_settings(str(tmp_path), settings)
  experiment.check_settings(str(tmp_path), dict(settings))  # same: fine
  with pytest.raises(GraphNasError, match=r"settings.json: written by an experiment "
                     r"with other settings \(learning_rate: 0.001 there, "
                     r"0.01 now\)"):
    experiment.check_settings(str(tmp_path), dict(settings,
                                                  learning_rate=0.01))


def test_cli_writes_curves_and_refuses_other_settings(tmp_path):
  cmd = [sys.executable, "-m", "graph_nas.experiment",
         "--task=stack_layers", "--replicas=2", "--trials=6",
         "--walks_per_update=2", f"--out={tmp_path}", "--forms=graph,random",
         "--entropy_mode=normalized"]
  env = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
         "PATH": "/usr/bin:/bin"}
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                        env=env, check=False, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  data = json.loads((tmp_path / "curves.json").read_text())
  assert set(data["curves"]) == {"graph", "random"}
  assert data["settings"]["entropy_mode"] == "normalized"
  assert (tmp_path / "best_reward.png").stat().st_size > 1000
  proc = subprocess.run(cmd[:-1] + ["--entropy_mode=mean"], cwd=ROOT,
                        capture_output=True, text=True, env=env, check=False,
                        timeout=300)
  assert proc.returncode != 0
  last = proc.stderr.strip().splitlines()[-1]
  assert "settings.json: written by an experiment with other" in last
  assert "entropy_mode: 'normalized' there, 'mean' now" in last


def test_sigkilled_experiment_resumes_to_the_same_curves(tmp_path):
  # The experiment's stores skip the disk flush (sync_store=False): a killed
  # process still loses no stored trial, and a rerun completes the same
  # searches as an uninterrupted run.
  import os
  import signal
  import sqlite3
  import time
  cmd = [sys.executable, "-m", "graph_nas.experiment",
         "--task=stack_layers", "--replicas=1", "--trials=100",
         "--walks_per_update=2", "--forms=graph", "--learning_rate=0.01"]
  env = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
         "PATH": "/usr/bin:/bin"}
  db = tmp_path / "killed" / "graph" / "replica_0" / "trials.sqlite"
  proc = subprocess.Popen(cmd + [f"--out={tmp_path / 'killed'}"], cwd=ROOT,
                          env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  stored = 0
  deadline = time.time() + 300
  while stored < 20 and time.time() < deadline and proc.poll() is None:
    time.sleep(0.05)
    if db.exists():
      try:
        with sqlite3.connect(db, timeout=5) as conn:
          stored = conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
      except sqlite3.OperationalError:
        pass
  assert proc.poll() is None, "finished before it could be killed"
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  with sqlite3.connect(db) as conn:
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    kept = conn.execute("SELECT trial_id, reward FROM trials ORDER BY "
                        "trial_id").fetchall()
  assert len(kept) >= 20 and [t for t, _ in kept] == list(range(len(kept)))
  for out in ("killed", "full"):
    r = subprocess.run(cmd + [f"--out={tmp_path / out}"], cwd=ROOT, env=env,
                       capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
  a, b = (json.loads((tmp_path / o / "curves.json").read_text())
          for o in ("killed", "full"))
  assert a["curves"] == b["curves"] and len(a["curves"]["graph"][0]) == 100
  with sqlite3.connect(db) as conn:
    again = conn.execute("SELECT trial_id, reward FROM trials WHERE "
                         f"trial_id < {len(kept)} ORDER BY trial_id").fetchall()
  assert again == kept  # nothing stored before the kill changed
