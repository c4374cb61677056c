"""Errors name settings: by their Python names in the library and in
graph_nas.api, by the flags in the launcher's one-line errors."""

import builtins
import os
import pickle
import re
import subprocess
import sys

import pytest

from graph_nas import api, search, space as space_lib
from graph_nas.search import algorithms, evaluators, executors, tasks
from graph_nas.errors import (GraphNasError, IdentityMismatch, SettingError,
                              SetupError)
from tests import api_rewards, crash_evaluators
from tests.conftest import PROTOS, ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
FLAG = re.compile(r"--[a-z]")


def _space():
  return space_lib.load(str(PROTOS / "select_optimizer_b2.textproto"))


def _search(out_dir, algorithm="pqt", budget=None, evaluator=None, **kw):
  space = _space()
  algo = (algorithms.RandomSearch(space, seed=1) if algorithm == "random"
          else algorithms.make_algorithm("pqt", space, seed=1,
                                         hidden_dim=8, embedding_dim=4))
  ev = evaluator or evaluators.FunctionEvaluator(tasks.reward_fn_for(space))
  settings = dict(max_trials=3, walks_per_update=3, seed=1,
                  tensorboard=False)
  settings.update(kw)
  return search.Search(space, algo, ev, str(out_dir),
                       search.SearchSettings(**settings), budget=budget)


def _message(fn):
  with pytest.raises(GraphNasError) as err:
    fn()
  text = str(err.value)
  assert not FLAG.search(text), f"a flag in a library message: {text}"
  return err.value, text


def test_library_messages_name_python_settings_not_flags(tmp_path,
                                                         monkeypatch):
  e, text = _message(lambda: _search(tmp_path / "p",
                                     update_policy="fast"))
  assert isinstance(e, SettingError) and isinstance(e, SetupError)
  assert text == "update_policy='fast': must be 'sync' or 'async'"
  _, text = _message(lambda: _search(tmp_path / "p", walks_per_update=0))
  assert text == "walks_per_update=0: must be >= 1"
  _, text = _message(lambda: executors.ProcessPoolExecutor(None, workers=0))
  assert text == "workers=0: must be >= 1"
  _, text = _message(lambda: executors.make_executor("gpu", None))
  assert text.startswith("executor='gpu': unknown executor")
  for spec, words in (("nocolon", "expected module:function"),
                      ("no_such_module_x:f", "cannot import module"),
                      ("tests.api_rewards:nope",
                       "module 'tests.api_rewards' has no 'nope'")):
    _, text = _message(lambda spec=spec: api.load_evaluator(spec))
    assert text.startswith(f"evaluator={spec!r}: {words}"), text

  real_import = builtins.__import__

  def no_ray(name, *args, **kwargs):
    if name == "ray":
      raise ImportError("No module named 'ray'")
    return real_import(name, *args, **kwargs)
  with monkeypatch.context() as m:
    m.setattr(builtins, "__import__", no_ray)
    _, text = _message(lambda: executors.RayExecutor(None))
  assert text.startswith("executor='ray': Ray is not installed")

  # The run's identity: a search setting, then a budget entry.
  job = _search(tmp_path / "a", budget={"epochs": 1.0})
  job.run()
  job.close()
  job = _search(tmp_path / "a", algorithm="random", budget={"epochs": 1.0})
  e, text = _message(job.run)
  job.close()
  assert isinstance(e, IdentityMismatch)
  assert text == (f"{tmp_path / 'a'} holds a search with algorithm='pqt', "
                  "not 'random': use another out_dir or the same settings "
                  "to resume")
  job = _search(tmp_path / "a", budget={"epochs": 2.0})
  e, text = _message(job.run)
  job.close()
  assert text == (f"{tmp_path / 'a'} holds a search trained with "
                  "epochs=1.0, not 2.0: rerun with epochs=1.0 to resume it, "
                  "or use another out_dir")
  # Rebuilt from its fields on the far side of a pipe.
  assert str(pickle.loads(pickle.dumps(e))) == text

  job = _search(tmp_path / "f", max_consecutive_failures=2, max_trials=6,
                evaluator=evaluators.FunctionEvaluator(
                    crash_evaluators.always_fails))
  e, text = _message(job.run)
  job.close()
  assert isinstance(e, search.SearchStopped)
  assert "2 consecutive trials failed (limit max_consecutive_failures=2)" \
      in text


def test_api_search_names_its_keyword_arguments(tmp_path):
  space = _space()
  small = dict(hidden_dim=8, embedding_dim=4)
  _, text = _message(lambda: api.search(
      space, crash_evaluators.always_fails, str(tmp_path / "f"),
      max_trials=6, max_consecutive_failures=2, **small))
  assert "(limit max_consecutive_failures=2)" in text
  api.search(space, api_rewards.reward, str(tmp_path / "r"), max_trials=2,
             **small)
  _, text = _message(lambda: api.search(
      space, api_rewards.reward_with_metrics, str(tmp_path / "r"),
      max_trials=4, **small))
  assert ("holds a search trained with evaluate='tests.api_rewards:reward',"
          " not 'tests.api_rewards:reward_with_metrics'") in text
  _, text = _message(lambda: api.search(
      space, api_rewards.reward, str(tmp_path / "w"), workers=2, **small))
  assert text.startswith("workers=2: applies to executor='process'")
  _, text = _message(lambda: api.search(
      space, api_rewards.reward, str(tmp_path / "u"), update_policy="fast",
      **small))
  assert text == "update_policy='fast': must be 'sync' or 'async'"


def _launch(*args):
  return subprocess.run([sys.executable, "-m", "graph_nas.launch", *args],
                        capture_output=True, text=True, cwd=ROOT, env=ENV,
                        timeout=300, check=False)


def _error_line(r):
  """The one "error:" line of a failed launch (TensorFlow's start-up lines
  and INFO logs aside)."""
  assert r.returncode != 0, r.stderr[-2000:]
  assert "Traceback" not in r.stderr, r.stderr[-3000:]
  lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1, r.stderr[-3000:]
  return lines[0]


def test_the_launcher_names_the_flags(tmp_path):
  out = tmp_path / "run"
  base = ["--space=protos/select_optimizer_b2.textproto", "--max_trials=5",
          f"--out_dir={out}"]
  fails = "--evaluator=tests.crash_evaluators:always_fails"
  line = _error_line(_launch(*base, fails, "--max_consecutive_failures=2"))
  # The reason names the evaluator's own line (where the user's code
  # raised), not graph_nas' frames.
  assert line.startswith("error: 2 consecutive trials failed (limit "
                         "--max_consecutive_failures=2); last reason: "
                         "RuntimeError: this reward always fails (at "
                         "tests/crash_evaluators.py:"), line
  assert "in always_fails)." in line, line
  line = _error_line(_launch(*base, fails, "--algorithm=random"))
  assert line == (f"error: {out} holds a search with --algorithm=evolution, "
                  "not random: use another --out_dir or the same settings to "
                  "resume")
  line = _error_line(_launch(*base, "--evaluator=tests.api_rewards:reward"))
  assert line == (f"error: {out} holds a search trained with "
                  "--evaluator=tests.crash_evaluators:always_fails, not "
                  "tests.api_rewards:reward: rerun with "
                  "--evaluator=tests.crash_evaluators:always_fails to "
                  "resume it, or use another --out_dir")
  line = _error_line(_launch(*base, "--evaluator=nocolon"))
  assert line == ("error: --evaluator=nocolon: expected module:function, "
                  "e.g. my_rewards:reward")
