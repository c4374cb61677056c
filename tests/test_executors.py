"""Tests of the executors: in-process, process pool, Ray (local cluster)."""

import collections
import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

from graph_nas import search
from graph_nas.search import executors
from graph_nas.errors import GraphNasError, SettingError, SetupError
from tests import events, executor_evaluators as ev
from tests.conftest import ROOT

# Nothing of Ray's is written under the home directory in tests.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


class KillOnceEvaluator:
  """Kills its own worker process on `trial` the first time (a marker file
  remembers the first attempt). Used by the Ray checks (tests/ray_checks.py);
  the process-pool tests use tests/executor_evaluators.py, whose workers do
  not import TensorFlow."""

  def __init__(self, trial, marker):
    self.trial, self.marker = trial, str(marker)

  def evaluate(self, config, trial_id, seed):
    if trial_id == self.trial and not os.path.exists(self.marker):
      pathlib.Path(self.marker).write_text("killed")
      os.kill(os.getpid(), 9)
    return search.EvalResult("ok", 0.25, {"pid": os.getpid()})


def _jobs(n):
  return [executors.TrialJob(i, (i,), {"i": i}, 100 + i, i) for i in range(n)]


def _drain(ex, jobs):
  for j in jobs:
    ex.submit(j)
  out = []
  while ex.in_flight():
    out.append(ex.wait_any())
  return sorted(out, key=lambda f: f.job.trial_id)


def test_in_process_executor_turns_exceptions_into_failures():
  class Boom:
    def evaluate(self, config, trial_id, seed):
      if trial_id == 1:
        raise ValueError("bad child")
      if trial_id == 2:
        raise SetupError("dataset missing")
      if trial_id == 3:
        raise GraphNasError("layer 1: bad filters")
      return search.EvalResult("ok", float("nan"))
  res = _drain(executors.InProcessExecutor(Boom()), _jobs(4))
  assert [r.status for r in res] == ["failed"] * 4
  assert res[0].reason == "non-finite reward nan"
  # The reason names the evaluator's own line that raised.
  assert re.fullmatch(r"ValueError: bad child \(at tests/test_executors\.py:"
                      r"\d+ in evaluate\)", res[1].reason), res[1].reason
  assert not res[1].fatal
  assert res[2].fatal  # setup errors stop the search
  assert not res[3].fatal  # any other error fails its trial only


def test_process_pool_runs_each_child_in_a_fresh_process():
  ex = executors.ProcessPoolExecutor(ev.PidEvaluator(), workers=2)
  try:
    res = _drain(ex, _jobs(4))
  finally:
    ex.shutdown()
  pids = [r.metrics["pid"] for r in res]
  assert all(r.status == "ok" for r in res)
  # One child per process: its memory goes back to the OS when it ends.
  assert len(set(pids)) == 4 and os.getpid() not in pids
  assert [r.metrics["seed"] for r in res] == [100, 101, 102, 103]


def test_process_pool_workers_share_the_cores(monkeypatch):
  """Each worker starts with TensorFlow on its share of the cores (or the
  threads asked for); the driver's own environment is left as it was, and
  a thread count the driver's environment sets is left to decide."""
  for k in executors.THREAD_VARIABLES:
    monkeypatch.delenv(k, raising=False)
  monkeypatch.setattr(os, "cpu_count", lambda: 4)

  def threads(**kw):
    ex = executors.ProcessPoolExecutor(ev.ThreadsEvaluator(), **kw)
    try:
      res = _drain(ex, _jobs(2))
    finally:
      ex.shutdown()
    return {tuple(r.metrics.values()) for r in res}

  assert threads(workers=2) == {("2", "2", "2")}
  assert threads(workers=1) == {("4", "4", "4")}
  assert threads(workers=8) == {("1", "1", "1")}
  assert threads(workers=2, threads=3) == {("3", "3", "3")}
  assert all(k not in os.environ for k in executors.THREAD_VARIABLES)
  monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "5")
  assert threads(workers=2) == {("5", None, None)}
  with pytest.raises(SettingError, match="worker_threads=-1"):
    executors.ProcessPoolExecutor(ev.ThreadsEvaluator(), threads=-1)


def test_process_pool_workers_run_several_trials_when_asked():
  """trials_per_worker: a worker process runs that many trials, then a
  fresh one takes over (0: no limit); results and seeds are the same."""
  def pids(limit):
    ex = executors.ProcessPoolExecutor(ev.PidEvaluator(), workers=2,
                                       trials_per_worker=limit)
    try:
      res = _drain(ex, _jobs(6))
    finally:
      ex.shutdown()
    assert [r.metrics["seed"] for r in res] == [100 + i for i in range(6)]
    assert all(r.status == "ok" for r in res)
    return [r.metrics["pid"] for r in res]

  assert len(set(pids(0))) <= 2
  per_process = collections.Counter(pids(2))
  assert max(per_process.values()) <= 2 and len(per_process) >= 3
  assert len(set(pids(1))) == 6
  with pytest.raises(SettingError, match="trials_per_worker=-1"):
    executors.ProcessPoolExecutor(ev.PidEvaluator(), trials_per_worker=-1)


@pytest.mark.parametrize("limit", [1, 0])
def test_process_pool_worker_killed_is_a_failed_trial(tmp_path, limit):
  """The killed worker's own trial fails, once; no other trial is touched
  (a fresh process per trial, or workers that run several).

  The old pool (concurrent.futures) broke as a whole on a worker's death:
  the queued trial 2's future got the same BrokenProcessPool as trial 1's,
  and whichever came first out of a set was blamed while the other was
  resubmitted -- trial 2 (never started) failed, trial 1 ran again and was
  recorded 'ok' in about half the runs.
  """
  ex = executors.ProcessPoolExecutor(
      ev.KillOnceEvaluator(1, tmp_path), workers=1, trials_per_worker=limit)
  try:
    res = _drain(ex, _jobs(3))
  finally:
    ex.shutdown()
  by_id = {r.job.trial_id: r for r in res}
  assert sorted(by_id) == [0, 1, 2] and len(res) == 3
  assert by_id[1].status == "failed" and by_id[1].reward is None
  assert by_id[1].reason == "worker process died: killed by SIGKILL"
  assert by_id[0].status == "ok" and by_id[2].status == "ok"
  # Each trial ran exactly once: the dead one is not silently retried.
  assert [ev.attempts(tmp_path, i) for i in range(3)] == [1, 1, 1]


def test_process_pool_death_beside_a_running_trial(tmp_path):
  """Two workers: trial 1 dies while trial 0 runs; trial 0 is unharmed."""
  ex = executors.ProcessPoolExecutor(
      ev.KillOnceEvaluator(1, tmp_path, overlap_with=0), workers=2)
  try:
    for job in _jobs(4):
      ex.submit(job)
    # Trial 0 holds until released: the death is seen while it runs.
    first = ex.wait_any()
    assert first.job.trial_id == 1 and first.status == "failed"
    assert "killed by SIGKILL" in first.reason
    assert not first.fatal
    (tmp_path / "release").write_text("")
    res = [first]
    while ex.in_flight():
      res.append(ex.wait_any())
  finally:
    ex.shutdown()
  by_id = {r.job.trial_id: r for r in res}
  assert [by_id[i].status for i in range(4)] == ["ok", "failed", "ok", "ok"]
  assert [ev.attempts(tmp_path, i) for i in range(4)] == [1, 1, 1, 1]
  # The trial that ran beside the death finished in the process it began in.
  assert by_id[0].metrics["pid"] != int((tmp_path / "killed").read_text())


def test_process_pool_exit_and_unpicklable_result_fail_their_trial():
  ex = executors.ProcessPoolExecutor(ev.ExitEvaluator(0), workers=2)
  try:
    res = _drain(ex, _jobs(2))
  finally:
    ex.shutdown()
  assert res[0].status == "failed"
  assert res[0].reason == ("worker process died with exit code 3 before "
                           "returning a result")
  assert res[1].status == "ok" and res[1].reward == 1.0
  ex = executors.ProcessPoolExecutor(ev.UnpicklableMetricsEvaluator())
  try:
    res = _drain(ex, _jobs(1))
  finally:
    ex.shutdown()
  assert res[0].status == "failed" and not res[0].fatal
  assert "cannot be sent to the driver" in res[0].reason


def test_process_pool_shutdown_stops_running_trials(tmp_path):
  # Trial 0 says it runs, then holds (never released); trial 1 is queued.
  pipe = events.Fifo(tmp_path / "events")
  ex = executors.ProcessPoolExecutor(
      ev.KillOnceEvaluator(9, tmp_path, overlap_with=0, events=pipe.path),
      workers=1)
  try:
    ex.submit(_jobs(1)[0])
    ex.submit(_jobs(2)[1])
    # A spawned worker starts slowly on a busy machine.
    pipe.count(r"^running 0$", 1, timeout=300, describe="trial 0 running")
    proc = ex._running[0].process  # pylint: disable=protected-access
    assert proc.is_alive()
    ex.shutdown()
    assert not proc.is_alive() and ex.in_flight() == 0
    assert ev.attempts(tmp_path, 1) == 0  # the queued trial never started
  finally:
    ex.shutdown()
    pipe.close()


def _ray_check(name, tmp_path):
  """Runs tests/ray_checks.py <name> in a fresh process on a local Ray."""
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  proc = subprocess.run([sys.executable, "-m", "tests.ray_checks", name,
                         str(tmp_path)], capture_output=True, text=True,
                        cwd=ROOT, env=env, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert line, proc.stdout[-2000:]
  return json.loads(line[-1][len("RESULT "):])


def test_ray_executor_runs_toy_searches_sync_and_async(tmp_path):
  result = _ray_check("toy_searches", tmp_path)
  for policy in ("sync", "async"):
    r = result[policy]
    assert r["ids"] == list(range(12)), policy
    assert r["statuses"] == ["ok"] * 12
    assert r["rewards_match"]
    assert r["updates"] == 3


def test_ray_worker_killed_mid_trial_is_retried_or_failed(tmp_path):
  result = _ray_check("worker_kills", tmp_path)
  retried, failed = result["1"], result["0"]
  assert retried["2"][0] == "ok"  # retried once on a new worker
  assert failed["2"][0] == "failed"
  assert "Ray worker lost" in failed["2"][1]
  for r in (retried, failed):
    assert all(r[i][0] == "ok" for i in ("0", "1", "3"))


def test_ray_missing_gives_install_hint(monkeypatch):
  import builtins
  real_import = builtins.__import__

  def no_ray(name, *args, **kwargs):
    if name == "ray":
      raise ImportError("No module named 'ray'")
    return real_import(name, *args, **kwargs)
  monkeypatch.setattr(builtins, "__import__", no_ray)
  with pytest.raises(GraphNasError, match=r"pip install \.\[ray\]"):
    executors.RayExecutor(ev.PidEvaluator())


def _trial_rows(db):
  import sqlite3
  with sqlite3.connect(db, timeout=30) as conn:
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return conn.execute("SELECT trial_id, walk, status, reward FROM trials "
                        "ORDER BY trial_id").fetchall()


def test_driver_killed_mid_trial_leaves_no_worker_and_resumes_the_same(
    tmp_path):
  """Process executor, sync policy: SIGKILL the driver while a worker
  evaluates trial 7. The worker ends with the driver (no orphan keeps
  training), and the resumed search stores the same walks and rewards as
  an uninterrupted one, every trial once."""
  from tests import crash_evaluators as ce
  args = [sys.executable, "-m", "graph_nas.launch",
          "--space=protos/select_optimizer_b2.textproto",
          "--evaluator=tests.crash_evaluators:SlowReward",
          "--algorithm=reinforce", "--max_trials=12",
          "--walks_per_update=3", "--executor=process", "--workers=2",
          "--noreuse_results", "--log_every=100"]
  env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
  env.pop(ce.HOLD_ENV, None)

  def run(out, marks, **extra):
    return subprocess.run(args + [f"--out_dir={out}"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, check=False,
                          env=dict(env, **{ce.FOLDER_ENV: str(marks)},
                                   **extra))

  r = run(tmp_path / "whole", tmp_path / "marks-whole")
  assert r.returncode == 0, r.stderr[-3000:]
  want = _trial_rows(tmp_path / "whole" / "trials.sqlite")
  assert [row[0] for row in want] == list(range(12))

  out, marks = tmp_path / "killed", tmp_path / "marks-killed"
  # The workers print what they start on the driver's stdout (SlowReward).
  proc = subprocess.Popen(
      args + [f"--out_dir={out}"], cwd=ROOT, stdout=subprocess.PIPE,
      stderr=subprocess.DEVNULL,
      env=dict(env, **{ce.FOLDER_ENV: str(marks), ce.HOLD_ENV: "7"}))
  lines = events.Lines(proc.stdout.fileno(), "the search")

  def trial_7_holds(got):
    """The holder's pid once trial 7 holds and trials 0..7 all started
    (trial 6 runs beside 7 in the other worker)."""
    started = {int(l.split()[1]) for l in got if l.startswith("started ")}
    holding = [int(l.split()[2]) for l in got if l.startswith("holding 7 ")]
    return holding[0] if holding and set(range(8)) <= started else None

  try:
    # TF start-up is slow on a busy machine.
    holder = lines.wait(trial_7_holds, timeout=300,
                        describe="trial 7 holding after trials 0..6")
    assert events.wait_ended([holder], 0) == [holder]  # it runs
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    before = _trial_rows(out / "trials.sqlite")
    assert 6 <= len(before) < 9, before  # batches 0 and 1, part of 2
    workers = {int(p.name.split("-")[2]) for p in marks.glob("started-*")}
    assert holder in workers and len(workers) >= 8  # trials 0..7
    alive = events.wait_ended(workers, timeout=60)
    assert not alive, f"worker processes outlived the driver: {alive}"
  finally:
    (marks / "release").write_text("")  # frees an orphan, if any
    if proc.poll() is None:
      proc.kill()
      proc.wait(timeout=60)
    proc.stdout.close()

  r = run(out, tmp_path / "marks-resumed")
  assert r.returncode == 0, r.stderr[-3000:]
  got = _trial_rows(out / "trials.sqlite")
  assert got[:len(before)] == before  # finished trials untouched
  assert got == want  # none lost, none twice; the same walks and rewards
