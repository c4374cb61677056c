"""The time a child and a search will take (the ETA of the progress line,
the launcher's one projection line) and a quiet TensorFlow start-up on a
CPU-only machine (graph_nas.child.trainer, graph_nas.cli.projection)."""

import os
import re
import subprocess
import sys

import keras
import pytest
from absl import logging

from graph_nas.child import trainer as child_trainer
from graph_nas.cli import projection as projection_lib
from graph_nas.child.trainer import Progress, format_duration
from graph_nas.child.settings import TrainSettings
from tests.conftest import ROOT

# A CPU-only launcher run: the launcher decides itself (not preset here).
ENV = {k: v for k, v in os.environ.items()
       if k not in ("TF_ENABLED_DEVICE_TYPES", "TF_CPP_MIN_LOG_LEVEL")}
ENV["PYTHONPATH"] = str(ROOT)
ERROR_LINE = re.compile(r"^E\d{4}")


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (-3, "0s"), (45.2, "45s"), (59.6, "1m00s"), (725, "12m05s"),
    (2 * 3600 + 55 * 60, "2h55m"), (23 * 3600 + 59 * 60 + 59, "23h59m"),
    (86400, "1d00h"), (3 * 86400 + 4 * 3600 + 10, "3d04h")])
def test_format_duration(seconds, text):
  assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds, text", [
    (0.42, "~0.4 s"), (40, "~40 s"), (720, "~12 min"),
    (2.9 * 3600, "~2.9 h"), (4.5 * 86400, "~4.5 days"),
    (180 * 86400, "~180 days"), (1500 * 86400, "~1,500 days")])
def test_rough_duration(seconds, text):
  assert projection_lib.rough_duration(seconds) == text


def test_progress_line_has_the_eta_of_the_child():
  eta = (7020 - 41) * 128 / 80.0  # the rest at 80 images/s: 3h06m
  line = Progress("trial 3", 41, 7020, 31.0, 80.0, eta).line()
  assert line == ("trial 3: step 41/7020, 80 images/s, ETA 3h06m, "
                  "31s elapsed")
  assert "ETA unknown" in Progress("trial 3", 1, 7020, 9.0, 0.0,
                                   None).line()


def tiny_model(config, *, input_shape, num_classes, preprocessing):
  del config, preprocessing
  inputs = keras.Input(input_shape)
  x = keras.layers.Rescaling(1 / 255.0)(inputs)
  x = keras.layers.Conv2D(4, 3, strides=4)(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def _trainer(cifar, **kw):
  settings = dict(data_dir=cifar.data_dir, train_examples=256,
                  eval_examples=64, batch_size=32, steps=6, augment=False,
                  progress_every_s=1e-9)
  settings.update(kw)
  return child_trainer.ChildTrainer(TrainSettings(**settings), tiny_model)


@pytest.fixture
def logged(monkeypatch):
  """[(level, line)] of what absl logging receives."""
  out = []
  for level in ("info", "warning"):
    monkeypatch.setattr(
        logging, level,
        lambda msg, *args, _level=level: out.append((_level, msg % args)))
  return out


def test_progress_lines_carry_the_eta_and_reach_the_observers(cifar, logged):
  trainer = _trainer(cifar)
  seen = []
  trainer.observers.append(seen.append)
  assert trainer.train({}, 1, label="trial 4").ok
  lines = [l for _, l in logged if l.startswith("trial 4: step ")]
  # A line after every step but the last; each ends with an ETA and the
  # time so far, and hands the same numbers to the observers.
  assert len(lines) == 5, lines
  assert [p.step for p in seen] == [1, 2, 3, 4, 5, 6]
  assert [p.line() for p in seen[:-1]] == lines
  assert "ETA unknown" in lines[0]  # one step: no speed yet
  for p in seen[1:-1]:
    assert p.images_per_s > 0
    assert p.eta_s == pytest.approx((6 - p.step) * 32 / p.images_per_s)
    assert re.search(r", ETA \d+s, \d+s elapsed$", p.line())
  assert seen[-1].finished and seen[-1].eta_s == 0.0


def test_projection_line_from_a_short_training(cifar, logged):
  trainer = _trainer(cifar, progress_every_s=0)
  projection = projection_lib.SearchProjection(1500, 1500, 1, "CPU",
                                              space_name="cifar")
  trainer.observers.append(projection)
  assert trainer.train({}, 1, label="trial 0").ok
  assert trainer.train({}, 2, label="trial 1").ok
  found = [l for _, l in logged if l.startswith("projected:")]
  assert found == projection.lines, "logged once, for the first child only"
  line = found[0]
  assert re.match(r"projected: ~\d+\.\d s per child, ~[\d.]+ (s|min|h) for "
                  r"1,500 trials on 1 CPU worker \(rough: trials x trial "
                  r"0's training time / workers; measured over its 6 steps, "
                  r"[\d,]+ images/s\)$", line), line
  assert not [l for level, l in logged if level == "warning"]  # no advice


def test_projection_of_a_long_search_names_the_cpu_way(cifar, logged):
  trainer = _trainer(cifar, progress_every_s=0)
  trainer.observers.append(
      projection_lib.SearchProjection(10 ** 8, 10 ** 8, 1, "CPU",
                                      space_name="cifar"))
  assert trainer.train({}, 1, label="trial 0").ok
  assert [level for level, l in logged
          if "projected:" in l or "far beyond" in l] == ["info", "warning"]
  advice = [l for level, l in logged if level == "warning"][0]
  assert re.match(r"~[\d,.]+ days is far beyond a day on this CPU; to try "
                  r"graph-nas here, search the CPU-sized space", advice)
  assert "--space=protos/cifar_cpu.textproto" in advice
  assert "bash launch/cifar_cpu_demo.sh" in advice


def _paper_child(step, elapsed):
  """The first paper-sized child on a 2-core CPU: 80 images/s."""
  return Progress("trial 0", step, 7020, elapsed, 80.0,
                  (7020 - step) * 128 / 80.0)


def test_projection_waits_for_a_few_progress_intervals_then_logs_once(logged):
  projection = projection_lib.SearchProjection(1500, 1500, 1, "CPU",
                                              space_name="cifar")
  projection(_paper_child(9, 11.0))
  projection(Progress("trial 0", 18, 7020, 40.0, 0.0, None))  # no speed
  assert projection.lines is None and not logged
  projection(_paper_child(27, 31.0))
  projection(_paper_child(36, 42.0))
  assert logged == [
      ("info", "projected: ~3.1 h per child, ~195 days for 1,500 trials on 1 "
               "CPU worker (rough: trials x trial 0's training time / "
               "workers; measured over its first 27 of 7,020 steps, 80 "
               "images/s)"),
      ("warning", "~195 days is far beyond a day on this CPU; to try "
                  "graph-nas here, search the CPU-sized space "
                  "(--space=protos/cifar_cpu.textproto, a child in seconds) "
                  "or run the demo (bash launch/cifar_cpu_demo.sh: 50 "
                  "architectures, screened and stopped early, about 15 "
                  "minutes on 2 cores)")]


def test_projection_wording_per_device_space_and_resume():
  child = _paper_child(27, 31.0)
  gpu = projection_lib.projection_lines(child, 1500, 1500, 4, "GPU", "cifar")
  assert gpu == ["projected: ~3.1 h per child, ~49 days for 1,500 trials "
                 "on 4 GPU workers (rough: trials x trial 0's training time "
                 "/ workers; measured over its first 27 of 7,020 steps, 80 "
                 "images/s)"]  # no CPU advice on a GPU
  cpu_space = projection_lib.projection_lines(child, 1443, 1500, 1, "CPU",
                                      "cifar_cpu")
  assert "for the remaining 1,443 of 1,500 trials on 1 CPU worker" in \
      cpu_space[0]
  assert "this is the CPU-sized space already: cut the budget" in \
      cpu_space[1] and "bash launch/cifar_cpu_demo.sh" in cpu_space[1]
  short = projection_lib.projection_lines(child, 5, 1500, 1, "CPU", "cifar")
  assert len(short) == 1 and "~15.6 h for the remaining 5" in short[0]
  assert short[0].endswith("80 images/s)")
  halving = projection_lib.projection_lines(child, 5, 1500, 1, "CPU",
                                            "cifar", early_stopping=True)
  assert halving[0].endswith("80 images/s; at most: early stopping trains "
                             "most children only part of their budget)")


def test_cpu_only_machine_looks_for_accelerators(tmp_path):
  dev, path = tmp_path / "dev", tmp_path / "site"
  dev.mkdir()
  (path / "tensorflow-plugins").mkdir(parents=True)  # empty: no plugin
  expected = sys.platform.startswith("linux")
  assert projection_lib.cpu_only_machine(str(dev), [str(path)]) is expected
  (path / "tensorflow-plugins" / "libmetal.so").write_text("")
  assert not projection_lib.cpu_only_machine(str(dev), [str(path)])
  for node in ("nvidia0", "nvidiactl", "dxg", "kfd", "accel0"):
    (dev / node).write_text("")
    assert not projection_lib.cpu_only_machine(str(dev), []), node
    (dev / node).unlink()


def _launch(args, timeout):
  return subprocess.run([sys.executable, "-m", "graph_nas.launch", *args],
                        capture_output=True, text=True, cwd=ROOT, env=ENV,
                        timeout=timeout)


def _check_no_error_lines(r):
  assert r.returncode == 0, r.stderr[-3000:]
  errors = [l for l in r.stderr.splitlines() if ERROR_LINE.match(l)]
  # A machine with an accelerator may log its own start-up lines; the two
  # of a CPU-only machine (the CUDA probe, the oneDNN notice) never appear.
  assert not [l for l in errors if "cuInit" in l or "oneDNN supports" in l]
  if projection_lib.cpu_only_machine():
    assert not errors, errors


def test_cpu_only_launcher_start_up_has_no_error_lines(tmp_path):
  _check_no_error_lines(_launch(
      ["--space=protos/stack_layers.textproto", "--max_trials=2",
       f"--out_dir={tmp_path / 'toy'}"], timeout=240))


def test_cifar_launcher_logs_one_projection_and_no_error_lines(cifar,
                                                               tmp_path):
  r = _launch(["--space=protos/cifar_cpu.textproto", "--max_trials=3",
               f"--data_dir={cifar.data_dir}", "--train_examples=256",
               "--eval_examples=64", "--batch_size=32", "--steps=4",
               "--noretrain_best", f"--out_dir={tmp_path / 'cifar'}"],
              timeout=300)
  _check_no_error_lines(r)
  projected = [l for l in r.stderr.splitlines() if "] projected: " in l]
  assert len(projected) == 1, r.stderr[-3000:]
  assert re.search(r"\] projected: ~[\d.]+ s per child, ~[\d.]+ (s|min) for "
                   r"3 trials on 1 CPU worker \(rough: .* its 4 steps, ",
                   projected[0]), projected[0]
