"""Tests of the search loop, the trial store, resume and the launcher."""

import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from graph_nas import report, search, space as space_lib
from graph_nas.search import algorithms, evaluators, tasks
from graph_nas.errors import GraphNasError
from graph_nas.report import observers as report_observers
from graph_nas.search.store import TrialStore
from tests.conftest import PROTOS, ROOT
from tests.launch_helpers import ENV, count_trials as _count
from tests.launch_helpers import launch as _launch
from tests.launch_helpers import TRIAL_LINE, launch_and_sigkill, sigkill
from tests.launch_helpers import start_logging


def _toy_search(out_dir, max_trials=12, evaluator=None, wpu=3, **kw):
  space = space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))
  algo = algorithms.make_algorithm("pqt", space, seed=1, learning_rate=0.01,
                                   entropy_weight=0.1, hidden_dim=16,
                                   embedding_dim=8)
  ev = evaluator or evaluators.FunctionEvaluator(tasks.reward_fn_for(space))
  settings = search.SearchSettings(max_trials=max_trials,
                                   walks_per_update=wpu, seed=1, **kw)
  # The reports' observers, as every front end attaches them.
  return search.Search(space, algo, ev, str(out_dir), settings,
                       observers=report_observers.from_settings(
                           settings, str(out_dir)))


def test_search_records_every_trial_and_finishes(tmp_path):
  job = _toy_search(tmp_path)
  timing = job.run()
  result = job.finalize()
  job.close()
  assert timing["trials_evaluated"] == 12
  with TrialStore(str(tmp_path / "trials.sqlite")) as store:
    rows = store.trials()
  assert [r["trial_id"] for r in rows] == list(range(12))
  assert [r["batch"] for r in rows] == [i // 3 for i in range(12)]
  for r in rows:
    assert r["status"] == "ok" and 0 <= r["reward"] <= 1
    assert sorted(r["config"]) == ["optimizer", "p1", "p2", "p3", "p4"]
    assert r["seed"] == 1 + r["trial_id"]
  assert (tmp_path / "checkpoint.npz").exists()
  best = json.loads((tmp_path / "best_architecture.json").read_text())
  assert best["reward"] == max(r["reward"] for r in rows)
  assert (tmp_path / "rewards.png").read_bytes()[:4] == b"\x89PNG"
  assert "| 1 |" in result["table"]
  assert any((tmp_path / "tensorboard").iterdir())


class _FlakyEvaluator:
  """Fails on every trial whose id is in `fail`; raises or returns failed."""

  def __init__(self, fail, raise_error=True):
    self.fail = set(fail)
    self.raise_error = raise_error

  def evaluate(self, config, trial_id, seed):
    if trial_id in self.fail:
      if self.raise_error:
        raise RuntimeError(f"child {trial_id} exploded")
      return search.EvalResult("failed", reason="loss is NaN")
    return search.EvalResult("ok", 0.5, {"val_accuracy": 0.5})


def test_failed_children_are_recorded_and_the_search_goes_on(tmp_path):
  job = _toy_search(tmp_path, evaluator=_FlakyEvaluator({2, 5, 6}))
  job.run()
  job.close()
  with TrialStore(str(tmp_path / "trials.sqlite")) as store:
    rows = store.trials()
  assert len(rows) == 12
  failed = {r["trial_id"]: r["reason"] for r in rows if r["status"] ==
            "failed"}
  assert set(failed) == {2, 5, 6}
  assert "RuntimeError: child 2 exploded" in failed[2]
  assert all(r["reward"] is None for r in rows if r["status"] == "failed")


def test_too_many_consecutive_failures_stop_the_search(tmp_path):
  job = _toy_search(tmp_path, evaluator=_FlakyEvaluator(
      range(4, 100), raise_error=False), max_consecutive_failures=3)
  with pytest.raises(search.SearchStopped, match="3 consecutive trials "
                     "failed.*loss is NaN"):
    job.run()
  job.close()
  with TrialStore(str(tmp_path / "trials.sqlite")) as store:
    assert store.count() == 7  # 4 ok + 3 failed, all kept


@pytest.mark.parametrize("checkpoint_every_s", [0.0, 1e9])
def test_resume_after_an_interruption_matches_an_uninterrupted_run(
    tmp_path, checkpoint_every_s):
  # 1e9: no checkpoint before the interruption; the resumed run replays the
  # stored trials from the initial controller and ends in the same place.
  # Without TensorBoard's per-trial summaries (not what is tested here).
  full = _toy_search(tmp_path / "full", max_trials=15, tensorboard=False)
  full.run()
  full.close()

  # A hard stop right after trial 6 (mid-batch 2) was stored.
  crashing = _toy_search(tmp_path / "resumed", max_trials=15,
                         checkpoint_every_s=checkpoint_every_s,
                         tensorboard=False)
  orig = crashing._record

  def killed_after_six(fin, batch=None):
    row = orig(fin, batch)
    if row["trial_id"] == 6:
      raise KeyboardInterrupt
    return row
  crashing._record = killed_after_six
  with pytest.raises(KeyboardInterrupt):
    crashing.run()
  crashing.close()
  with TrialStore(str(tmp_path / "resumed" / "trials.sqlite")) as store:
    assert store.count() == 7
  assert os.path.exists(tmp_path / "resumed" / "checkpoint.npz") == (
      checkpoint_every_s == 0.0)
  resumed = _toy_search(tmp_path / "resumed", max_trials=15,
                        checkpoint_every_s=checkpoint_every_s,
                        tensorboard=False)
  timing = resumed.run()
  resumed.close()
  assert timing["trials_evaluated"] == 8  # 7..14: nothing ran twice
  with TrialStore(str(tmp_path / "full" / "trials.sqlite")) as a, \
      TrialStore(str(tmp_path / "resumed" / "trials.sqlite")) as b:
    ra, rb = a.trials(), b.trials()
  assert [r["trial_id"] for r in rb] == list(range(15))
  assert [r["walk"] for r in ra] == [r["walk"] for r in rb]
  assert [r["reward"] for r in ra] == [r["reward"] for r in rb]


def test_resuming_with_other_settings_is_refused(tmp_path):
  job = _toy_search(tmp_path, max_trials=3)
  job.run()
  job.close()
  space = space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))
  other = search.Search(space, algorithms.RandomSearch(space, seed=1),
                        evaluators.FunctionEvaluator(tasks.reward_fn_for(space)),
                        str(tmp_path), search.SearchSettings(
                            max_trials=6, walks_per_update=3, seed=1))
  with pytest.raises(GraphNasError, match="holds a search with "
                     "algorithm='pqt', not 'random'"):
    other.run()
  other.close()




def test_sigkill_mid_run_then_resume_loses_and_repeats_nothing(tmp_path):
  # A controller (reinforce: weights, optimizer state and random state in
  # its checkpoint) killed mid-run, without TensorBoard (the controller
  # needs TensorFlow; the summaries would only add to each start).
  out = tmp_path / "run"
  args = ["--space=protos/select_optimizer_b2.textproto",
          "--algorithm=reinforce", "--max_trials=90", "--walks_per_update=2",
          "--notensorboard", f"--out_dir={out}"]
  db = str(out / "trials.sqlite")
  proc, lines = start_logging(args)
  try:  # killed once it has logged its 30th stored trial
    lines.count(TRIAL_LINE, 30, timeout=300, describe="30 stored trials")
  finally:
    killed = sigkill(proc)
  assert killed, "the search ended before its kill"
  killed_at = _count(db)
  assert 30 <= killed_at < 90, killed_at
  with sqlite3.connect(db) as conn:
    before = conn.execute("SELECT trial_id, walk, reward FROM trials "
                          "ORDER BY trial_id").fetchall()
  done = _launch(args + ["--log_every=50"])
  assert done.returncode == 0, done.stderr[-2000:]
  with sqlite3.connect(db) as conn:
    after = conn.execute("SELECT trial_id, walk, reward FROM trials "
                         "ORDER BY trial_id").fetchall()
  assert [r[0] for r in after] == list(range(90))  # none lost, none twice
  assert after[:len(before)] == before  # finished trials untouched


def test_launcher_bad_flag_and_bad_space_are_one_line(tmp_path):
  r = _launch(["--space=protos/stack_layers.textproto", "--max_trials=0"])
  assert r.returncode != 0
  assert r.stderr.strip().splitlines() == [
      "error: flag --max_trials=0: 0 is not a positive integer"]
  bad = tmp_path / "bad.textproto"
  bad.write_text('start: "a"\nvertices { name: "a" actions { name: "x" '
                 'target: "b" } }\n')
  r = _launch([f"--space={bad}"])
  assert r.returncode != 0
  lines = r.stderr.strip().splitlines()
  assert lines == [f"error: {bad}:2: vertex 'a', action 'x': target 'b' is "
                   "not a vertex of this space"], lines
  r = _launch(["--space=protos/stack_layers.textproto", "--algorithm=sgd"])
  assert r.returncode != 0 and "Traceback" not in r.stderr
  assert r.stderr.strip().splitlines()[-1].startswith(
      "error: flag --algorithm=sgd")


def test_report_cli_summarises_and_plots(tmp_path):
  job = _toy_search(tmp_path / "a", max_trials=6)
  job.run()
  job.close()
  png = tmp_path / "both.png"
  r = subprocess.run([sys.executable, "-m", "graph_nas.report",
                      f"--runs={tmp_path / 'a'}", f"--plot={png}"],
                     capture_output=True, text=True, cwd=ROOT, env=ENV,
                     timeout=300)
  assert r.returncode == 0, r.stderr
  assert "'trials': 6" in r.stdout
  assert png.read_bytes()[:4] == b"\x89PNG"
  r = subprocess.run([sys.executable, "-m", "graph_nas.report",
                      f"--runs={tmp_path / 'nothing'}"], capture_output=True,
                     text=True, cwd=ROOT, env=ENV, timeout=300)
  assert r.returncode != 0
  assert "not a search output folder" in r.stderr


def test_curves_moving_average_and_best():
  trials = [{"trial_id": i, "status": "ok", "reward": r}
            for i, r in zip((0, 2, 3), [0.1, 0.5, 0.3])]
  trials.insert(1, {"trial_id": 1, "status": "failed", "reward": None})
  x, moving, best = report.curves(trials, window=2)
  np.testing.assert_allclose(best, [0.1, 0.1, 0.5, 0.5])
  np.testing.assert_allclose(moving, [0.1, 0.1, 0.5, 0.4])
  assert list(x) == [0, 1, 2, 3]  # the store's trial ids


class _CountingEvaluator:
  """A toy reward that counts its evaluations."""

  def __init__(self):
    self.calls = 0

  def evaluate(self, config, trial_id, seed):
    del trial_id, seed
    self.calls += 1
    return search.EvalResult("ok", 0.1 * config["x"], {"val_accuracy": 0.5})


TWO_CHOICES = ('start: "a" vertices { name: "a" actions { name: "x" '
               'target: "end" key: "x" int_values: [1, 2, 3] } } '
               'vertices { name: "end" }')


@pytest.mark.parametrize("policy", ["sync", "async"])
def test_an_architecture_is_evaluated_once(tmp_path, policy):
  space = space_lib.loads(TWO_CHOICES, "three.textproto")
  evaluator = _CountingEvaluator()
  settings = search.SearchSettings(max_trials=12, walks_per_update=2,
                                   seed=0, update_policy=policy)
  job = search.Search(space, algorithms.RandomSearch(space, seed=0),
                      evaluator, str(tmp_path), settings,
                      observers=report_observers.from_settings(
                          settings, str(tmp_path)))
  job.run()
  rows = job.store.trials()
  job.finalize(retrain=False)
  job.close()
  assert len(rows) == 12
  fresh = [r for r in rows if r["cached_from"] is None]
  cached = [r for r in rows if r["cached_from"] is not None]
  assert evaluator.calls == len(fresh) == len({r["walk"] for r in rows})
  assert cached, "12 draws from 3 architectures repeat"
  first = {r["walk"]: r for r in fresh}
  for r in cached:
    origin = first[r["walk"]]
    assert r["cached_from"] == origin["trial_id"] < r["trial_id"]
    assert r["reward"] == origin["reward"] and r["status"] == "ok"
    assert r["metrics"]["cached_from"] == origin["trial_id"]
  # Reports rank architectures, not repeats.
  table = (tmp_path / "top_trials.md").read_text()
  assert table.count("\n| ") == len(fresh)
  assert report.summary(rows)["cached"] == len(cached)


def test_reuse_results_can_be_switched_off(tmp_path):
  space = space_lib.loads(TWO_CHOICES, "three.textproto")
  evaluator = _CountingEvaluator()
  job = search.Search(space, algorithms.RandomSearch(space, seed=0),
                      evaluator, str(tmp_path), search.SearchSettings(
                          max_trials=6, seed=0, reuse_results=False))
  job.run()
  job.close()
  assert evaluator.calls == 6


def test_resuming_with_another_training_budget_is_refused(tmp_path):
  space = space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))

  def make(budget):
    return search.Search(space, algorithms.RandomSearch(space, seed=1),
                         evaluators.FunctionEvaluator(tasks.reward_fn_for(space)),
                         str(tmp_path), search.SearchSettings(
                             max_trials=3, seed=1), budget=budget)

  job = make({"epochs": 1.0, "train_examples": 4096})
  job.run()
  job.close()
  job = make({"epochs": 2.0, "train_examples": 4096})
  with pytest.raises(GraphNasError) as err:
    job.run()
  job.close()
  assert "trained with epochs=1.0, not 2.0" in str(err.value)
  job = make({"epochs": 1.0, "train_examples": None})
  with pytest.raises(GraphNasError, match="train_examples=4096, not "
                     r"\(unset\)"):
    job.run()
  job.close()
  job = make({"epochs": 1.0, "train_examples": 4096})  # the same: resumes
  job.run()
  job.close()


def test_one_search_per_output_folder(tmp_path):
  first = _toy_search(tmp_path, max_trials=3)
  with pytest.raises(GraphNasError, match="another search is running on "
                     f"this output folder: pid {os.getpid()}"):
    _toy_search(tmp_path, max_trials=3)
  first.run()
  first.close()
  second = _toy_search(tmp_path, max_trials=6)  # released: resumes
  second.run()
  assert second.store.count() == 6
  second.close()


def _error_lines(r):
  """stderr's lines, TensorFlow's start-up lines left out."""
  import re
  return [l for l in r.stderr.strip().splitlines()
          if l.startswith("error:") or not re.match(
              r"^(WARNING: All log messages|[IWE]\d{4} |To enable the)", l)]


def test_flags_without_effect_are_one_line_naming_them(tmp_path):
  r = _launch(["--space=stack_layers", "--workers=4", "--epochs=3",
               "--batch_size=64", "--ray_address=auto",
               "--max_staleness=1", f"--out_dir={tmp_path / 'a'}"])
  assert r.returncode != 0
  assert _error_lines(r) == [
      "error: flags with no effect here: --epochs, --batch_size "
      "(stack_layers is a 'stack_layers' task: no child is trained); "
      "--workers (--executor=inprocess evaluates one child at a time; use "
      "--executor=process or ray); --ray_address (only with "
      "--executor=ray); --max_staleness (only with --update_policy=async)."
      " Drop them."], r.stderr
  assert not (tmp_path / "a").exists()
  # An image space: flags that only matter elsewhere are named too.
  r = _launch(["--space=protos/cifar_cpu.textproto", "--tpu=local",
               "--steps=5", "--epochs=2", "--flops_exponent=-0.1",
               "--executor=process", "--workers=2", "--gpus_per_child=1",
               "--noretrain_best", "--final_epochs=1"])
  assert r.returncode != 0
  assert _error_lines(r) == [
      # (The reasons in the declarations' order: graph_nas.child.settings.)
      "error: flags with no effect here: --epochs (--steps sets the "
      "training length); --tpu (only with --strategy=tpu); "
      "--flops_exponent (only with --target_flops); "
      "--final_epochs (--retrain_best=false: the best child is not "
      "retrained); --gpus_per_child (only with --executor=ray). Drop "
      "them."], r.stderr
  # Controller flags without a controller, PQT flags without PQT.
  r = _launch(["--space=stack_layers", "--algorithm=random",
               "--entropy_weight=0.1", "--value_features=8"])
  assert _error_lines(r) == [
      "error: flags with no effect here: --entropy_weight, --value_features "
      "(--algorithm=random has no controller). Drop them."], r.stderr
  r = _launch(["--space=stack_layers", "--algorithm=reinforce",
               "--queue_size=5"])
  assert _error_lines(r) == [
      "error: flags with no effect here: --queue_size (only with "
      "--algorithm=pqt). Drop them."], r.stderr


def test_launcher_finds_a_shipped_space_by_name(tmp_path):
  def launch(args):  # from another folder than the repository
    return subprocess.run([sys.executable, "-m", "graph_nas.launch", *args],
                          capture_output=True, text=True, cwd=tmp_path,
                          env=ENV, timeout=300)
  r = launch(["--space=stack_layers", "--max_trials=3",
              f"--out_dir={tmp_path / 'a'}"])
  assert r.returncode == 0, r.stderr[-2000:]
  assert (tmp_path / "a" / "trials.sqlite").exists()
  r = launch(["--space=stack_layer"])
  assert r.returncode != 0
  assert _error_lines(r) == [
      "error: no search space 'stack_layer': not a file, nor a shipped "
      "space (shipped: " + ", ".join(space_lib.shipped_spaces()) + ")"]


def test_a_keras_backend_other_than_tensorflow_is_one_line(tmp_path):
  r = subprocess.run([sys.executable, "-m", "graph_nas.launch",
                      "--space=stack_layers", f"--out_dir={tmp_path}"],
                     capture_output=True, text=True, cwd=ROOT,
                     env=dict(ENV, KERAS_BACKEND="jax"), timeout=300)
  assert r.returncode != 0
  assert _error_lines(r) == [
      "error: graph-nas needs the TensorFlow Keras backend, but "
      "KERAS_BACKEND selects 'jax': set KERAS_BACKEND=tensorflow (or unset "
      "it)"]


class _RaisingEvaluator:
  """Raises `error` on trial 1, scores the others."""

  def __init__(self, error):
    self.error = error

  def evaluate(self, config, trial_id, seed):
    del config, seed
    if trial_id == 1:
      raise self.error
    return search.EvalResult("ok", 0.5)


def test_only_a_setup_error_stops_the_search(tmp_path):
  from graph_nas.child.block_args import ChildConfigError
  from graph_nas.errors import SetupError
  # A user's (or the builder's) GraphNasError fails its own trial only.
  job = _toy_search(tmp_path / "a", max_trials=4, evaluator=_RaisingEvaluator(
      ChildConfigError("layer 1: 'filters' must be positive")))
  job.run()
  rows = job.store.trials()
  job.close()
  assert [r["status"] for r in rows] == ["ok", "failed", "ok", "ok"]
  assert "'filters' must be positive" in rows[1]["reason"]
  # A fault of the setup (say, the dataset vanished) stops it at once.
  job = _toy_search(tmp_path / "b", max_trials=4, evaluator=_RaisingEvaluator(
      SetupError("dataset 'cifar10' is not prepared")))
  with pytest.raises(search.SearchStopped, match="trial 1: dataset"):
    job.run()
  assert job.store.count() == 1  # trial 0, stored before
  job.close()


def test_many_sigkills_leave_a_sound_store_and_the_same_search(tmp_path):
  """SIGKILL at random moments of a toy search, four times; then finish.
  The store passes SQLite's integrity check, no trial is lost or stored
  twice, and walks and rewards equal an uninterrupted run's.

  The default searcher (evolution: its population and random state are
  checkpointed like a controller's weights) without TensorBoard: no
  TensorFlow start-up, so each start takes seconds, not tens of them (the
  controller under a SIGKILL: test_sigkill_mid_run_then_resume_loses_and_repeats_nothing)."""
  rng = np.random.default_rng(3)
  args = ["--space=protos/select_optimizer_b2.textproto",
          "--algorithm=evolution", "--max_trials=120",
          "--walks_per_update=3", "--log_every=100", "--notensorboard"]
  whole = tmp_path / "whole"
  r = _launch(args + [f"--out_dir={whole}"], timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  out = tmp_path / "killed"
  db = str(out / "trials.sqlite")
  kills = 0
  for _ in range(4):
    # 4 x (24 + 3) < 120: never past the end.
    kills += launch_and_sigkill(args + [f"--out_dir={out}"], rng,
                                most_trials=24)
  assert kills == 4, "a run ended before its kill"
  r = _launch(args + [f"--out_dir={out}"], timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  with sqlite3.connect(db) as conn:
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    got = conn.execute("SELECT trial_id, walk, reward FROM trials ORDER BY "
                       "trial_id").fetchall()
  with sqlite3.connect(str(whole / "trials.sqlite")) as conn:
    want = conn.execute("SELECT trial_id, walk, reward FROM trials ORDER BY "
                        "trial_id").fetchall()
  assert [row[0] for row in got] == list(range(120))
  assert got == want


def test_launcher_value_features_reach_the_controller(tmp_path):
  out = tmp_path / "k8"
  r = _launch(["--space=select_optimizer_b2", "--algorithm=reinforce",
               "--value_features=8", "--max_trials=4",
               "--retrain_best=false", f"--out_dir={out}"])
  assert r.returncode == 0, r.stderr[-2000:]
  # TensorBoard is on by default: its folder and the line that opens it.
  assert (out / "tensorboard").is_dir()
  assert f"tensorboard --logdir {out}/tensorboard" in r.stdout
  with np.load(out / "checkpoint.npz") as ckpt:
    extra = [ckpt[n].shape for n in ckpt.files
             if n.startswith("controller/")]
  # The launcher's controller without the option (its defaults otherwise).
  plain = algorithms.make_algorithm(
      "reinforce", space_lib.load(str(PROTOS /
                                      "select_optimizer_b2.textproto")),
      seed=0, value_features=0)
  # The option adds exactly its two weights: value kernel [H, 8], bias [8].
  for w in plain.controller.get_weights():
    extra.remove(w.shape)
  assert sorted(extra) == [(8,), (64, 8)]


def test_notensorboard_writes_no_curves_and_starts_no_tensorflow(tmp_path):
  out = tmp_path / "run"
  # The launcher's main, then: was TensorFlow imported?
  code = ("import runpy, sys\n"
          "sys.argv = ['graph_nas.launch'] + sys.argv[1:]\n"
          "try:\n  runpy.run_module('graph_nas.launch', run_name='__main__')\n"
          "finally:\n  print('tensorflow imported:', 'tensorflow' in "
          "sys.modules)\n")
  r = subprocess.run([sys.executable, "-c", code, "--space=select_optimizer_b2",
                      "--max_trials=6", "--notensorboard",
                      f"--out_dir={out}"], capture_output=True, text=True,
                     cwd=ROOT, env=ENV, timeout=120, check=False)
  assert r.returncode == 0, r.stderr[-2000:]
  assert (out / "trials.sqlite").exists()
  assert not (out / "tensorboard").exists()
  assert "TensorBoard" not in r.stdout
  assert r.stdout.strip().splitlines()[-1] == "tensorflow imported: False"


def test_time_outside_evaluation_counts_parallel_children_once():
  """With children evaluated in parallel, the share of the wall time
  outside evaluation is the time no child ran (never negative)."""
  from graph_nas.search.loop import _covered
  assert _covered([(1, 5), (2, 6), (8, 9)], 0, 10) == 6
  assert _covered([(-3, 2), (9, 12)], 0, 10) == 3  # clipped to the run
  assert _covered([], 0, 10) == 0
