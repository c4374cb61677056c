"""What graph_nas.api.search says: progress by default, quiet on request,
clear errors for a function that cannot be an evaluator or fails."""

import os
import subprocess
import sys

import pytest

from graph_nas import api
from graph_nas.errors import GraphNasError, SettingError
from graph_nas.search.loop import SearchStopped
from graph_nas.search.store import TrialStore
from tests import api_rewards
from tests.conftest import PROTOS, ROOT

SPACE = str(PROTOS / "select_optimizer_b2.textproto")

_SCRIPT = """
import sys
from graph_nas import api
from tests import api_rewards
api.search({space!r}, api_rewards.reward, {out!r}, max_trials=6,
           tensorboard=False, verbose={verbose})
print("done")
"""


def _run(tmp_path, verbose):
  code = _SCRIPT.format(space=SPACE, out=str(tmp_path / str(verbose)),
                        verbose=verbose)
  return subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                        capture_output=True, text=True, timeout=240,
                        env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_search_shows_progress_by_default_and_is_quiet_on_request(tmp_path):
  talk = _run(tmp_path, True)
  assert talk.returncode == 0, talk.stderr[-2000:]
  lines = [l for l in talk.stderr.splitlines() if "trial " in l and
           "ETA" in l]
  assert len(lines) == 6, talk.stderr[-2000:]
  assert "trial 5 (6 of 6)" in lines[-1]
  assert "cuInit" not in talk.stderr  # no CUDA probe line on a CPU
  quiet = _run(tmp_path, False)
  assert quiet.returncode == 0, quiet.stderr[-2000:]
  assert not [l for l in quiet.stderr.splitlines() if "ETA" in l]
  assert quiet.stdout.strip() == "done"


def _wrong_signature(a, b):
  return a + b


def _no_reward(config):
  return {"accuracy": 0.5}


def _returns_text(config):
  return "0.5"


def _always_raises(config):
  raise ValueError(f"cannot train {config['optimizer']}")


def test_a_function_that_cannot_be_called_is_refused_before_any_trial(
    tmp_path):
  with pytest.raises(SettingError, match="cannot be called as fn.config. "
                     "or fn.config, trial_id, seed.: missing a required "
                     "argument: 'b'"):
    api.search(SPACE, _wrong_signature, str(tmp_path), max_trials=3,
               verbose=False)
  assert not os.path.exists(tmp_path / "trials.sqlite")


@pytest.mark.parametrize("fn, words", [
    (_no_reward, "returned a dict without a 'reward' entry .keys: .'accuracy'.."),
    (_returns_text, "returned '0.5' .str.: expected a number")])
def test_a_function_that_returns_no_reward_stops_at_the_first_trial(
    tmp_path, fn, words):
  with pytest.raises(SearchStopped, match="trial 0: the reward function "
                     + words):
    api.search(SPACE, fn, str(tmp_path), max_trials=20, verbose=False,
               tensorboard=False)
  # A fault of the function, not of the architecture: nothing is stored
  # as a trial, so a fixed function resumes the folder from trial 0.
  with TrialStore(str(tmp_path / "trials.sqlite"), read_only=True) as store:
    assert store.count() == 0


def test_a_search_whose_trials_all_fail_says_why_and_where(tmp_path):
  with pytest.raises(GraphNasError) as info:
    api.search(SPACE, _always_raises, str(tmp_path), max_trials=4,
               verbose=False, tensorboard=False)
  text = str(info.value)
  assert "all 4 trials failed" in text
  assert "the first (trial 0): ValueError: cannot train" in text
  assert "tests/test_api_talks.py:" in text and "in _always_raises" in text
  with pytest.raises(GraphNasError) as info:
    api.search(SPACE, _always_raises, str(tmp_path / "long"),
               max_trials=30, max_consecutive_failures=3, verbose=False,
               tensorboard=False)
  assert "3 consecutive trials failed" in str(info.value)
  assert "ValueError: cannot train" in str(info.value)


def test_a_good_function_still_runs(tmp_path):
  result = api.search(SPACE, api_rewards.reward, str(tmp_path),
                      max_trials=4, verbose=False, tensorboard=False)
  assert result["best"]["trial_id"] in range(4)
