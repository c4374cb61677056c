"""End-to-end CIFAR-10 searches through the launcher, on the generated,
learnable CIFAR-10 of tests/generated_data.py (every process reads it)."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import time

import numpy as np
import pytest

from tests.conftest import ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
           RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
# The algorithm is pinned: these tests check the executors and the data,
# and the learning checks below need the children that PQT's seeded first
# batch proposes (the default's first proposals are uniform random walks,
# some of which learn more slowly in 12 steps).
TINY = ["--space=protos/cifar_cpu.textproto", "--max_trials=2",
        "--algorithm=pqt",
        "--walks_per_update=2", "--steps=12", "--batch_size=32",
        "--train_examples=256", "--eval_examples=128"]


def _launch(cifar, args, **kw):
  return subprocess.run([*cifar.launch_command(), *args,
                         f"--data_dir={cifar.data_dir}"],
                        capture_output=True, text=True, cwd=ROOT, env=ENV,
                        timeout=400, **kw)


def _rows(db):
  with sqlite3.connect(db) as conn:
    return conn.execute("SELECT trial_id, walk, status, reward, config, "
                        "metrics FROM trials ORDER BY trial_id").fetchall()


def _check_rungs(db, rows):
  """The default early stopping (rungs 1/4, 1/2 of 12 steps): a stopped
  child trained to its rung and scored there, a full one learned; every
  child reported at the first rung through its executor."""
  with sqlite3.connect(db) as conn:
    records = conn.execute("SELECT job_key, rung, value, go_on, trial_id "
                           "FROM rungs").fetchall()
  assert sorted(r[4] for r in records if r[1] == 0) == [r[0] for r in rows]
  full = []
  for _, _, status, reward, _, metrics in rows:
    metrics = json.loads(metrics)
    assert metrics["val_accuracy"] == reward
    if metrics["budget_fraction"] < 1:
      assert metrics["steps_trained"] == {0: 3, 1: 6}[metrics["rung"]]
      assert metrics["stopped_early"]
    else:
      assert metrics["steps_trained"] == 12 and metrics["rung"] == 2
      # The generated data is learnable: 12 steps are far beyond chance.
      assert metrics["val_accuracy"] > 0.3, metrics
      full.append(reward)
  assert full  # the first child reaching a rung always goes on
  return max(full)


def test_tiny_cifar_search_end_to_end(tmp_path, cifar):
  out = tmp_path / "cifar"
  r = _launch(cifar, TINY + [f"--out_dir={out}", "--final_epochs=1",
                             "--final_train_examples=256"])
  assert r.returncode == 0, r.stderr[-3000:]
  rows = _rows(out / "trials.sqlite")
  assert [row[0] for row in rows] == [0, 1]
  for _, _, status, reward, config, metrics in rows:
    assert status == "ok", metrics
    assert 0.0 <= reward <= 1.0
    config, metrics = json.loads(config), json.loads(metrics)
    assert 1 <= len(config["layers"]) <= 4 and config["stem_stride"] == 2
    assert metrics["params"] > 0 and metrics["flops"] > 0
    assert metrics["val_accuracy"] == reward
    assert metrics["val_examples"] == 128 and metrics["steps"] == 12
  best_full = _check_rungs(out / "trials.sqlite", rows)
  assert (out / "checkpoint.npz").exists()
  assert (out / "rewards.png").read_bytes()[:4] == b"\x89PNG"
  best = json.loads((out / "best_architecture.json").read_text())
  assert best["reward"] == best_full  # the best full-budget child
  # The best child, retrained (1 epoch of 256 images) and scored on the
  # test split, reloads and takes raw images.
  import keras
  model = keras.models.load_model(out / "best_child" / "model.keras")
  x = np.full((2, 32, 32, 3), 128, np.uint8)
  assert model.predict(x, verbose=0).shape == (2, 10)
  arch = json.loads((out / "best_child" / "architecture.json").read_text())
  assert arch["training"]["train_examples"] == 256
  assert arch["training"]["epochs"] == 1.0
  assert "best child retrained: status ok" in r.stdout
  from graph_nas.child import strategies
  assert f"children train on {strategies.describe_devices()};" in r.stderr
  # Per-trial tfds reading lines are gone from the default log.
  assert "Load dataset info" not in r.stderr


@pytest.mark.parametrize("executor", ["ray", "process"])
def test_tiny_cifar_search_in_worker_processes(tmp_path, cifar, executor):
  """A local Ray cluster and a process pool: the workers read the data."""
  out = tmp_path / executor
  r = _launch(cifar, TINY + [f"--out_dir={out}", f"--executor={executor}",
                             "--workers=2", "--retrain_best=false"])
  assert r.returncode == 0, r.stderr[-3000:]
  rows = _rows(out / "trials.sqlite")
  assert [row[2] for row in rows] == ["ok", "ok"]
  for row in rows:  # trained in the workers, on the same data
    metrics = json.loads(row[5])
    assert metrics["val_accuracy"] == row[3] and metrics["steps"] == 12
    assert metrics["val_examples"] == 128
  # The rung reports went through the pipe / the Ray mailbox.
  _check_rungs(out / "trials.sqlite", rows)


def test_sigkill_in_a_child_then_resume_gives_the_same_rewards(tmp_path,
                                                               cifar):
  """--deterministic: killed mid-child and resumed, a search stores the
  same walks and rewards as an uninterrupted one."""
  args = ["--space=protos/cifar_cpu.textproto", "--max_trials=4",
          "--walks_per_update=2", "--steps=6", "--batch_size=32",
          "--train_examples=512", "--eval_examples=128", "--deterministic",
          "--retrain_best=false", f"--data_dir={cifar.data_dir}"]
  whole = tmp_path / "whole"
  r = _launch(cifar, args[:-1] + [f"--out_dir={whole}"])
  assert r.returncode == 0, r.stderr[-3000:]
  killed = tmp_path / "killed"
  proc = subprocess.Popen([*cifar.launch_command(), *args,
                           f"--out_dir={killed}"], cwd=ROOT, env=ENV,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  db = killed / "trials.sqlite"
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if db.exists() and _count(db) >= 1:
      break
    time.sleep(0.05)
  time.sleep(1.0)  # into the next child's build and training
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  stored = _count(db)
  assert 1 <= stored < 4, stored
  r = _launch(cifar, args[:-1] + [f"--out_dir={killed}"])
  assert r.returncode == 0, r.stderr[-3000:]
  a, b = _rows(whole / "trials.sqlite"), _rows(db)
  assert [row[:3] for row in a] == [row[:3] for row in b]
  assert np.allclose([row[3] for row in a], [row[3] for row in b],
                     rtol=0, atol=1e-6)


def _count(db):
  try:
    with sqlite3.connect(db, timeout=5) as conn:
      return conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
  except sqlite3.OperationalError:
    return 0


def test_missing_dataset_is_one_clear_line(tmp_path):
  r = subprocess.run(
      [os.sys.executable, "-m", "graph_nas.launch",
       "--space=protos/cifar_cpu.textproto", f"--data_dir={tmp_path}",
       f"--out_dir={tmp_path / 'out'}"], capture_output=True, text=True,
      cwd=ROOT, env=ENV, timeout=300)
  assert r.returncode != 0
  # TensorFlow's C++ start-up lines ("WARNING: All log messages before
  # absl::InitializeLog()...", "I0000 ...") and our INFO lines are not the
  # error; the rest must be one line, no traceback.
  lines = [l for l in r.stderr.strip().splitlines()
           if not re.match(r"^(WARNING: All log messages before absl|"
                           r"[IWE]\d{4} |To enable the following)", l)]
  assert "Traceback" not in r.stderr
  assert len(lines) == 1 and lines[0].startswith("error: "), lines
  assert str(tmp_path) in lines[0] and "cifar10" in lines[0]
  assert "Three ways" in lines[0]


def test_task_params_reach_the_data_and_the_builder(tmp_path):
  """A reduced-resolution ImageNet proxy by editing the textproto alone;
  --image_size overrides it."""
  text = (ROOT / "protos" / "imagenet.textproto").read_text()
  text = re.sub(r'key: "image_size" value: "\d+"',
                'key: "image_size" value: "40"', text)
  proxy = tmp_path / "imagenet_proxy.textproto"
  proxy.write_text(text)
  cmd = [os.sys.executable, str(ROOT / "tests" / "mock_launch.py"), "6",
         f"--space={proxy}", f"--data_dir={tmp_path / 'tfds'}",
         "--max_trials=1", "--steps=1", "--batch_size=2",
         "--eval_examples=2", "--retrain_best=false"]
  for extra, size in (([], 40), (["--image_size=24"], 24)):
    out = tmp_path / f"run{size}"
    r = subprocess.run(cmd + [f"--out_dir={out}", *extra],
                       capture_output=True, text=True, cwd=ROOT, env=ENV,
                       timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    (row,) = _rows(out / "trials.sqlite")
    metrics = json.loads(row[5])
    assert row[2] == "ok", metrics
    assert metrics["image_size"] == size
