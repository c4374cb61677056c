"""End-to-end searches on the real CIFAR-10 in ../shared/data/tfds."""

import json
import os
import re
import sqlite3
import subprocess
import sys

import numpy as np

from tests.conftest import ROOT, TFDS_DIR

ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
           RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
TINY = ["--space=protos/cifar.textproto", f"--data_dir={TFDS_DIR}",
        "--max_trials=2", "--walks_per_update=2", "--steps=3",
        "--batch_size=32", "--train_examples=256", "--eval_examples=128"]


def _launch(args):
  return subprocess.run([sys.executable, "-m", "graph_nas.launch", *args],
                        capture_output=True, text=True, cwd=ROOT, env=ENV,
                        timeout=900)


def test_tiny_cifar_search_end_to_end(tmp_path):
  out = tmp_path / "cifar"
  r = _launch(TINY + [f"--out_dir={out}"])
  assert r.returncode == 0, r.stderr[-3000:]
  with sqlite3.connect(out / "trials.sqlite") as conn:
    rows = conn.execute("SELECT trial_id, status, reward, config, metrics "
                        "FROM trials ORDER BY trial_id").fetchall()
  assert [row[0] for row in rows] == [0, 1]
  for _, status, reward, config, metrics in rows:
    assert status == "ok", metrics
    assert 0.0 <= reward <= 1.0
    config, metrics = json.loads(config), json.loads(metrics)
    assert 1 <= len(config["layers"]) <= 6
    assert metrics["params"] > 0 and metrics["flops"] > 0
    assert metrics["val_accuracy"] == reward
  assert (out / "checkpoint.npz").exists()
  assert (out / "rewards.png").read_bytes()[:4] == b"\x89PNG"
  best = json.loads((out / "best_architecture.json").read_text())
  assert best["reward"] == max(row[2] for row in rows)
  # The best child, retrained and scored on the test split, reloads.
  import keras
  model = keras.models.load_model(out / "best_child" / "model.keras")
  x = np.zeros((2, 32, 32, 3), np.float32)
  assert model(x).shape == (2, 10)
  assert "best child retrained: status ok" in r.stdout


def test_tiny_cifar_search_on_a_local_ray_cluster(tmp_path):
  out = tmp_path / "ray"
  r = _launch(TINY + [f"--out_dir={out}", "--executor=ray", "--workers=2",
                      "--retrain_best=false"])
  assert r.returncode == 0, r.stderr[-3000:]
  with sqlite3.connect(out / "trials.sqlite") as conn:
    rows = conn.execute("SELECT status, metrics FROM trials").fetchall()
  assert [s for s, _ in rows] == ["ok", "ok"]
  assert all(json.loads(m)["val_accuracy"] >= 0 for _, m in rows)


def test_missing_dataset_is_one_clear_line(tmp_path):
  r = _launch(["--space=protos/cifar.textproto", f"--data_dir={tmp_path}",
               f"--out_dir={tmp_path / 'out'}"])
  assert r.returncode != 0
  # TensorFlow's C++ start-up lines ("WARNING: All log messages before
  # absl::InitializeLog()...", "I0000 ...") are not ours; the rest must be one
  # line, no traceback.
  lines = [l for l in r.stderr.strip().splitlines()
           if not re.match(r"^(WARNING: All log messages before absl|"
                           r"[IWE]\d{4} |To enable the following)", l)]
  assert "Traceback" not in r.stderr
  assert len(lines) == 1 and lines[0].startswith("error: "), lines
  assert str(tmp_path) in lines[0] and "cifar10" in lines[0]
