"""graph_nas.study: ask and tell, the study's queries, warm starts."""

import json
import subprocess
import sys
import zlib

import pytest

from graph_nas import api
from graph_nas.errors import GraphNasError, SettingError
from graph_nas.search.ask_tell import TellError
from graph_nas.search.store import TrialStore
from tests.conftest import ROOT
from tests.folder_helpers import read_only_folder, snapshot

SPACE = "select_optimizer_b4"  # a branch per optimizer: many architectures
SUBPROCESS_TIMEOUT_S = 180
KNOWN = {"optimizer": "sgd", "p1": 8, "p2": 2, "p3": 18, "p4": 82}


def reward(config):
  """A fixed, deterministic score of an architecture in [0, 1)."""
  text = json.dumps(config, sort_keys=True).encode()
  return (zlib.crc32(text) % 1000) / 1000


def run_study(out, n, **settings):
  with api.Study(SPACE, out, seed=3, **settings) as study:
    for _ in range(n):
      trial = study.ask()
      study.tell(trial, reward(trial.config))
    return study.trials


def test_ask_and_tell_stores_every_trial_and_the_best(tmp_path):
  trials = run_study(tmp_path / "s", 12, walks_per_update=2)
  assert [t.number for t in trials] == list(range(12))
  assert all(t.state == "complete" for t in trials)
  assert [t.value for t in trials] == [reward(t.config) for t in trials]
  view = api.load_study(tmp_path / "s")
  best = max(trials, key=lambda t: (t.value, -t.number))
  assert view.best_trial.number == best.number
  assert view.best_config == best.config
  assert view.best_value == best.value
  # The algorithm learned: 6 updates of 2 trials, in its checkpoint.
  with TrialStore(str(tmp_path / "s" / "trials.sqlite"),
                  read_only=True) as store:
    assert store.count() == 12 and not store.asked()
  assert (tmp_path / "s" / "best_architecture.json").exists()


def test_a_seeded_study_is_reproducible(tmp_path):
  a = run_study(tmp_path / "a", 8)
  b = run_study(tmp_path / "b", 8)
  assert [t.walk for t in a] == [t.walk for t in b]


def test_several_trials_out_told_in_any_order(tmp_path):
  with api.Study(SPACE, tmp_path / "s", walks_per_update=2) as study:
    trials = [study.ask() for _ in range(4)]
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert study.asked == [0, 1, 2, 3]
    assert len({json.dumps(t.config, sort_keys=True)
                for t in trials}) == 4
    for t in reversed(trials):
      study.tell(t, reward(t.config))
    assert study.asked == []
    states = {t.number: t.state for t in study.trials}
    assert states == {0: "complete", 1: "complete", 2: "complete",
                      3: "complete"}
    nxt = study.ask()
    assert nxt.number == 4


def test_a_bad_tell_is_one_error_and_changes_nothing(tmp_path):
  with api.Study(SPACE, tmp_path / "s") as study, \
      api.Study(SPACE, tmp_path / "other") as other:
    trial = study.ask()
    study.tell(trial, 0.5)
    with pytest.raises(TellError, match="trial 0 was told already"):
      study.tell(trial, 0.7)
    nxt = study.ask()
    before = [(t.number, t.state, t.value) for t in study.trials]
    for value, match in ((float("nan"), "finite number"),
                         (float("inf"), "finite number"),
                         ("0.5", "finite number"), (True, "finite number"),
                         (None, "exactly one")):
      with pytest.raises(TellError, match=match):
        study.tell(nxt, value)
    with pytest.raises(TellError, match="exactly one"):
      study.tell(nxt, 0.1, error="oom")
    with pytest.raises(TellError, match="another study"):
      other.tell(nxt, 0.1)
    with pytest.raises(TellError, match="not asked"):
      study.tell(99, 0.1)
    assert [(t.number, t.state, t.value) for t in study.trials] == before
    record = study.tell(nxt, error=MemoryError("out of memory"))
    assert record.state == "failed"
    assert "MemoryError: out of memory" in record.reason


_CRASH = """
import os, signal, sys
from graph_nas import api
study = api.Study({space!r}, sys.argv[1], seed=5)
trials = [study.ask() for _ in range(3)]
study.tell(trials[1], 0.25)
print(",".join(str(t.number) + ":" + "-".join(map(str, t.walk))
               for t in trials), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_trials_out_when_the_process_dies_are_asked_again(tmp_path):
  out = tmp_path / "s"
  proc = subprocess.run(
      [sys.executable, "-c", _CRASH.format(space=SPACE), str(out)],
      cwd=ROOT, capture_output=True, text=True, check=False,
      timeout=SUBPROCESS_TIMEOUT_S)
  assert proc.returncode == -9, proc.stderr[-2000:]
  handed = dict(item.split(":") for item in proc.stdout.strip().split(","))
  with api.Study(SPACE, out, seed=5) as study:
    told = {t.number: t for t in study.trials if t.state == "complete"}
    assert list(told) == [1] and told[1].value == 0.25
    again = [study.ask(), study.ask()]
    assert [t.number for t in again] == [0, 2]
    assert ["-".join(map(str, t.walk)) for t in again] == [handed["0"],
                                                           handed["2"]]
    for t in again:
      study.tell(t, reward(t.config))
    assert study.ask().number == 3


def test_early_stopping_through_report_and_should_stop(tmp_path):
  with api.Study(SPACE, tmp_path / "s", rungs="1/2", eta=2) as study:
    first, second = study.ask(), study.ask()
    first.report(0.9, 0.5)
    assert not first.should_stop()
    second.report(0.1, 0.5)  # below the first at the rung: stops
    assert second.should_stop()
    study.tell(second, 0.1)
    record = study.tell(first, 0.95)
    assert record.state == "complete"
    states = {t.number: (t.state, t.budget_fraction) for t in study.trials}
    assert states[1] == ("stopped", 0.5)
    assert study.best_trial.number == 0  # a stopped trial is never best


def test_load_study_reads_a_running_study_and_writes_nothing(tmp_path):
  out = tmp_path / "s"
  with api.Study(SPACE, out) as study:
    for _ in range(3):
      t = study.ask()
      study.tell(t, reward(t.config))
    study.ask()  # one out
    before = snapshot(out)
    view = api.load_study(out)
    assert [t.state for t in view.trials] == ["complete"] * 3 + ["asked"]
    assert len(view.trials_dataframe()) == 4
    view.close()
    assert snapshot(out) == before
    t = study.ask()
    study.tell(t, 0.999)
    assert view.best_value == 0.999  # each query reads afresh
    view.close()
  with read_only_folder(out):
    assert len(api.load_study(out).trials) == 5


def test_trials_dataframe_and_the_extra_it_needs(tmp_path, monkeypatch):
  run_study(tmp_path / "s", 4)
  view = api.load_study(tmp_path / "s")
  df = view.trials_dataframe()
  assert list(df["number"]) == [0, 1, 2, 3]
  assert {"state", "value", "config.optimizer"} <= set(df.columns)
  assert list(df["value"]) == [t.value for t in view.trials]
  monkeypatch.setitem(sys.modules, "pandas", None)
  with pytest.raises(GraphNasError, match=r"graph-nas\[pandas\]"):
    view.trials_dataframe()


def test_no_complete_trial_yet_is_one_clear_error(tmp_path):
  with api.Study(SPACE, tmp_path / "s") as study:
    with pytest.raises(GraphNasError, match="no complete trial yet"):
      study.best_trial  # pylint: disable=pointless-statement


def test_settings_are_the_declared_ones(tmp_path):
  with pytest.raises(SettingError, match="max_trials=5: a setting of "
                     "api.search's loop"):
    api.Study(SPACE, tmp_path / "s", max_trials=5)
  with pytest.raises(SettingError, match="unknown setting"):
    api.Study(SPACE, tmp_path / "s", bogus=1)
  with pytest.raises(SettingError, match="seed"):
    api.Study(SPACE, tmp_path / "s", seed=-1)
  assert not (tmp_path / "s").exists()


def test_a_study_folder_is_not_resumed_by_api_search(tmp_path):
  out = tmp_path / "s"
  with api.Study(SPACE, out) as study:
    study.ask()
  with pytest.raises(GraphNasError, match="holds a search with"):
    api.search(SPACE, reward, out, max_trials=3, verbose=False)
  with TrialStore(str(out / "trials.sqlite"), read_only=True) as store:
    assert [r["trial_id"] for r in store.asked()] == [0]
    assert store.count() == 0


# -------------------------------------------------------------- enqueue
def test_enqueued_configs_come_first_and_teach_like_any_trial(tmp_path):
  with api.Study(SPACE, tmp_path / "s", walks_per_update=2) as study:
    assert study.enqueue(KNOWN) is True
    assert study.enqueue(KNOWN) is False  # queued before: not again
    first = study.ask()
    assert first.number == 0 and first.config == KNOWN
    study.tell(first, 0.99)
    others = []
    for _ in range(15):
      t = study.ask()
      others.append(t.config)
      study.tell(t, reward(t.config))
    assert KNOWN not in others  # no_repeats knows it was run
    assert study.best_config == KNOWN


def test_a_config_that_is_no_walk_names_the_decision(tmp_path):
  with api.Study(SPACE, tmp_path / "s") as study:
    with pytest.raises(GraphNasError, match=r"vertex 'sgd_p1'.*the config "
                       r"has p1=9999"):
      study.enqueue(dict(KNOWN, p1=9999))
    with pytest.raises(GraphNasError, match=r"config has no p2"):
      study.enqueue({"optimizer": "adam", "p1": 1})


def test_api_search_enqueue_runs_the_known_architecture_first(tmp_path):
  api.search(SPACE, reward, tmp_path / "s", max_trials=4,
             enqueue=[KNOWN], verbose=False)
  trials = api.load_study(tmp_path / "s").trials
  assert trials[0].config == KNOWN
  assert KNOWN not in [t.config for t in trials[1:]]
  with pytest.raises(GraphNasError, match="enqueue: config #0"):
    api.search(SPACE, reward, tmp_path / "t", max_trials=4,
               enqueue=[{"optimizer": "none"}], verbose=False)
  assert not (tmp_path / "t").exists()


def test_launcher_enqueue_flag(tmp_path):
  good = tmp_path / "good.json"
  good.write_text(json.dumps([{"config": KNOWN}]))
  bad = tmp_path / "bad.json"
  bad.write_text(json.dumps([KNOWN, {"optimizer": "sgd"}]))
  def launch(path, out):
    return subprocess.run(
        [sys.executable, "-m", "graph_nas.launch", f"--space={SPACE}",
         "--max_trials=3", f"--out_dir={out}", f"--enqueue={path}"],
        cwd=ROOT, capture_output=True, text=True, check=False,
        timeout=SUBPROCESS_TIMEOUT_S)
  proc = launch(bad, tmp_path / "b")
  assert proc.returncode != 0
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: --enqueue={bad}: config #1: ")
  assert "vertex 'sgd_p1'" in last
  assert not (tmp_path / "b").exists()
  proc = launch(good, tmp_path / "g")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert api.load_study(tmp_path / "g").trials[0].config == KNOWN


def test_the_readme_study_example_runs_as_printed(tmp_path):
  import os
  import re
  readme = (ROOT / "README.md").read_text()
  section = readme.split("## Coming from Optuna")[1].split("\n## ")[0]
  code, = re.findall(r"```python\n(.*?)\n```", section, re.S)
  (tmp_path / "study_example.py").write_text(code + "\n")
  proc = subprocess.run(
      [sys.executable, "study_example.py"], cwd=tmp_path,
      capture_output=True, text=True, check=False,
      timeout=SUBPROCESS_TIMEOUT_S,
      env=dict(os.environ, PYTHONPATH=str(ROOT)))
  assert proc.returncode == 0, proc.stderr[-2000:]
  value, config = proc.stdout.strip().splitlines()[-1].split(" ", 1)
  assert float(value) <= 0 and "'optimizer'" in config
  view = api.load_study(tmp_path / "runs" / "study")
  assert len(view.trials) == 30
  assert view.trials[0].config == KNOWN  # the enqueued one, first


def cheap_score(config):
  """A user's screening function (higher: more promising)."""
  return reward(config)


def test_a_study_screens_with_a_function(tmp_path):
  with api.Study(SPACE, tmp_path / "s", screen=cheap_score,
                 candidates_per_trial=4, screen_explore=0.0) as study:
    for _ in range(6):
      t = study.ask()
      study.tell(t, reward(t.config))
  with TrialStore(str(tmp_path / "s" / "trials.sqlite"),
                  read_only=True) as store:
    screened = store.screened()
    chosen = [s for s in screened if s["chosen"]]
    assert len(screened) == 4 * 6 and len(chosen) == 6
    for key in {s["screen_key"] for s in screened}:
      group = [s for s in screened if s["screen_key"] == key]
      best = max(group, key=lambda s: s["score"])
      assert best["chosen"]  # no exploration: the best-scored runs


def test_a_study_screens_with_the_predictor_on_the_users_features(tmp_path):
  """screen_features=fn in a Study: the predictor, ready after
  screen_min_trials told trials, scores every candidate on fn."""
  seen = []

  def features(config):
    seen.append(config)
    return [reward(config), float(config["optimizer"] == "sgd")]

  with api.Study(SPACE, tmp_path / "s", screen="predictor",
                 screen_features=features, candidates_per_trial=4,
                 screen_min_trials=4) as study:
    for _ in range(10):
      t = study.ask()
      study.tell(t, reward(t.config))
  with TrialStore(str(tmp_path / "s" / "trials.sqlite"),
                  read_only=True) as store:
    screened = store.screened()
    trials = store.trials()
  assert len(trials) == 10 and len(screened) == 4 * 6
  assert {s["scorer"] for s in screened} == {"predictor"}
  texts = {json.dumps(c, sort_keys=True) for c in seen}
  assert all(json.dumps(s["config"], sort_keys=True) in texts
             for s in screened)
  with pytest.raises(SettingError, match=r"screen_features=.*only with "
                     r"screen='predictor'"):
    api.Study(SPACE, tmp_path / "t", screen="none", screen_features=features)
  assert not (tmp_path / "t").exists()
