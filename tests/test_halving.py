"""Tests of early stopping (graph_nas.search.halving) in the search loop,
on a toy learning-curve task (tests/learning_curves.py)."""

import collections
import os
import subprocess
import sys
import textwrap

import pytest

from graph_nas import api, search
from graph_nas.errors import SettingError
from graph_nas.search import algorithms, evaluators, executors, halving
from graph_nas.search.store import TrialStore
from graph_nas.space import load
from tests import learning_curves as lc
from tests.conftest import PROTOS, ROOT

SPACE = str(PROTOS / "select_optimizer_b4.textproto")


# ------------------------------------------------------------ the rule
def test_parse_rungs():
  assert halving.parse_rungs("1/4,1/2") == (0.25, 0.5)
  assert halving.parse_rungs(" 1/9, 1/3 ") == (1 / 9, 1 / 3)
  assert halving.parse_rungs((0.25, 0.5)) == (0.25, 0.5)
  for off in ("", "none", "off", "None"):
    assert halving.parse_rungs(off) == ()
  for bad, why in (("1/2,1/4", "increase"), ("1", "between 0 and 1"),
                   ("0", "between 0 and 1"), ("a/b", "not a fraction")):
    with pytest.raises(SettingError, match=why) as e:
      halving.parse_rungs(bad)
    assert e.value.setting == "rungs"


def test_the_best_1_over_eta_at_a_rung_go_on_own_score_included():
  table = halving.RungTable((0.25, 0.5), eta=2)
  # n = 1 keeps 1; n = 2 and 3 keep 1; n = 4 and 5 keep 2.
  decisions = [table.decide(f"c{i}", 0, v)
               for i, v in enumerate([0.5, 0.4, 0.6, 0.3, 0.55])]
  assert decisions == [True, False, True, False, True]
  assert table.decide("c1", 0, 0.99) is False  # decided once, kept
  assert table.counts() == [5, 0, 0]
  assert [halving.keep_count(n, 3) for n in (1, 2, 3, 5, 6, 9)] == \
      [1, 1, 1, 1, 2, 3]
  with pytest.raises(SettingError, match="eta"):
    halving.RungTable((0.5,), eta=1)


def test_learning_reward_adds_the_median_gain_to_the_full_budget():
  table = halving.RungTable((0.25, 0.5), eta=2)
  assert table.learning_reward(0.3, 0) == 0.3  # no full child yet
  for key, (v0, v1, full) in {"a": (0.2, 0.3, 0.5), "b": (0.3, 0.35, 0.4),
                              "c": (0.1, 0.2, 0.6)}.items():
    table.add(key, 0, v0, True)
    table.add(key, 1, v1, True)
    table.add(key, 2, full, True)
  table.add("d", 0, 0.05, False)  # stopped: no full score
  # gains to full from rung 0: 0.3, 0.1, 0.5 -> median 0.3
  assert table.learning_reward(0.05, 0) == pytest.approx(0.35)
  # from rung 1: 0.2, 0.05, 0.4 -> 0.2
  assert table.learning_reward(0.25, 1) == pytest.approx(0.45)
  assert table.learning_reward(0.5, 2) == 0.5
  assert table.learning_reward(0.5, None) == 0.5


def test_a_trial_asks_once_per_rung_it_passes_and_stops_when_told():
  asked = []

  def ask(report):
    asked.append((report.rung, report.fraction, report.value))
    return report.rung == 0

  trial = halving.Trial("t3", (0.25, 0.5), ask, trial_id=3, seed=7)
  trial.report(0.1, 0.1)  # before the first rung: nothing asked
  assert asked == [] and not trial.should_stop()
  trial.report(0.4, 0.6)  # passes both rungs: asked at each, stops at 1
  assert asked == [(0, 0.25, 0.4), (1, 0.5, 0.4)]
  assert trial.should_stop() and trial.rung == 1 and trial.fraction == 0.5
  trial.report(0.9, 1.0)  # stopped: nothing more is asked
  assert len(asked) == 2
  assert trial.outcome() == {"rung": 1, "budget_fraction": 0.5,
                             "stopped_early": True,
                             "rung_scores": [0.4, 0.4]}
  with pytest.raises(search.GraphNasError, match="progress"):
    halving.Trial("t", (0.5,), ask).report(0.5, 1.5)
  full = halving.Trial("t", (0.5,), lambda r: True)
  full.report(0.3, 0.5)
  full.report(0.6, 1.0)
  assert full.rung == 1 and full.fraction == 1.0 and not full.should_stop()


# ------------------------------------------------------- in the search
def _run(out, fn, **settings):
  settings.setdefault("max_trials", 40)
  settings.setdefault("tensorboard", False)
  settings.setdefault("sync_store", False)
  return api.search(SPACE, fn, str(out), **settings)


def _replay(rows, rungs, eta):
  """The decisions of a fresh RungTable fed the records in order."""
  table = halving.RungTable(rungs, eta)
  return [table.decide(r["job_key"], r["rung"], r["value"])
          for r in rows if r["rung"] < len(rungs)]


def _check_halving(store_path, steps_folder, rungs=(0.25, 0.5), eta=2):
  with TrialStore(store_path) as store:
    trials, records = store.trials(), store.rungs()
    best = store.best(1)[0]
  fresh = [t for t in trials if t["cached_from"] is None]
  # Every decision is the rule's, replayed in the order they were taken.
  decided = [r for r in records if r["rung"] < len(rungs)]
  assert [bool(r["go_on"]) for r in decided] == _replay(records, rungs, eta)
  # Each fresh trial: its rung records, its stop, its reward.
  by_trial = collections.defaultdict(dict)
  for r in records:
    by_trial[r["trial_id"]][r["rung"]] = r
  steps = dict(lc.steps_done(steps_folder))
  for t in fresh:
    rec = by_trial[t["trial_id"]]
    stopped = t["budget_fraction"] < 1
    assert t["metrics"]["stopped_early"] == stopped
    if stopped:
      k = t["rung"]
      assert not rec[k]["go_on"] and all(rec[j]["go_on"] for j in range(k))
      assert t["reward"] == pytest.approx(rec[k]["value"])
      assert t["budget_fraction"] == rungs[k]
      assert steps[t["trial_id"]] == round(rungs[k] * lc.STEPS)
    else:
      assert t["rung"] == len(rungs) and t["budget_fraction"] == 1.0
      assert all(rec[j]["go_on"] for j in range(len(rungs)))
      assert rec[len(rungs)]["value"] == pytest.approx(t["reward"])
      assert t["reward"] == pytest.approx(lc.score(t["config"], lc.STEPS))
      assert steps[t["trial_id"]] == lc.STEPS
  # The best trial is the best full-budget one.
  full = [t for t in fresh if t["budget_fraction"] == 1.0]
  assert best["trial_id"] == max(full, key=lambda t: t["reward"])["trial_id"]
  return fresh, full


def test_poor_children_stop_at_their_rung_and_free_their_work(tmp_path):
  task = lc.CurveTask(tmp_path / "steps")
  out = _run(tmp_path / "run", task, rungs="1/4,1/2", eta=2)
  fresh, full = _check_halving(out["store"], tmp_path / "steps")
  stopped = [t for t in fresh if t["budget_fraction"] < 1]
  assert stopped and full
  work = sum(s for _, s in lc.steps_done(tmp_path / "steps"))
  assert work < len(fresh) * lc.STEPS  # stopped children trained less
  assert out["best"]["metrics"]["budget_fraction"] == 1.0
  # The algorithm learns from the score plus the median gain to full.
  with TrialStore(out["store"]) as store:
    records = store.rungs()
  table = halving.RungTable((0.25, 0.5), 2)
  for r in records:
    table.add(r["job_key"], r["rung"], r["value"], r["go_on"])
  gain0 = table.gain_to_full(0)
  assert gain0 > 0  # curves rise: a full child gained from rung 0
  some = next(t for t in stopped if t["rung"] == 0)
  assert table.learning_reward(some["reward"], 0) == pytest.approx(
      some["reward"] + gain0)


def test_rungs_off_is_the_plain_search(tmp_path):
  """rungs='none': the reporting function runs its whole budget and the
  search proposes, scores and stores what the plain function gives."""
  a = _run(tmp_path / "a", lc.CurveTask(tmp_path / "sa"), rungs="none")
  b = _run(tmp_path / "b", lc.plain_curve, rungs="none")
  with TrialStore(a["store"]) as sa, TrialStore(b["store"]) as sb:
    ra, rb = sa.trials(), sb.trials()
    assert sa.rungs() == []
  assert [(r["walk"], r["reward"]) for r in ra] == \
      [(r["walk"], r["reward"]) for r in rb]
  assert all(r["rung"] is None and r["budget_fraction"] is None
             for r in ra)
  assert all(s == lc.STEPS for _, s in lc.steps_done(tmp_path / "sa"))


def test_halving_on_a_process_pool_async(tmp_path):
  task = lc.CurveTask(tmp_path / "steps")
  out = _run(tmp_path / "run", task, rungs="1/4,1/2", eta=2,
             executor="process", workers=2, update_policy="async",
             walks_per_update=2, max_trials=16)
  with TrialStore(out["store"]) as store:
    trials, records = store.trials(), store.rungs()
  assert len(trials) == 16
  fresh = [t for t in trials if t["cached_from"] is None]
  # Every fresh trial reported at rung 0 and its records carry its id.
  assert sorted(r["trial_id"] for r in records if r["rung"] == 0) == \
      sorted(t["trial_id"] for t in fresh)
  assert any(t["budget_fraction"] < 1 for t in fresh)
  assert [bool(r["go_on"]) for r in records if r["rung"] < 2] == \
      _replay(records, (0.25, 0.5), 2)
  assert len({pid for pid in (line.split()[2] for line in (
      tmp_path / "steps" / "steps.txt").read_text().splitlines())}) > 1


def test_ray_executor_halving(tmp_path):
  from tests.test_executors import _ray_check
  result = _ray_check("halving", tmp_path)
  assert result["trials"] == 10
  assert result["stopped"] >= 1 and result["full"] >= 1
  assert result["replayed"], result


_RESUME = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from graph_nas import api
    from tests import learning_curves as lc
    api.search({space!r}, lc.CurveTask({steps!r}, kill_at=(6, 5)), {out!r},
               max_trials=24, rungs="1/4,1/2", eta=2, tensorboard=False)
    """)


def test_resume_after_sigkill_mid_rung(tmp_path):
  """The driver dies inside a child past its first rung (in-process): the
  resumed search keeps the decided rung, gives the child the same
  decision there, and trains no finished child again."""
  steps, out = str(tmp_path / "steps"), str(tmp_path / "run")
  script = _RESUME.format(root=str(ROOT), space=SPACE, steps=steps, out=out)
  first = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                         capture_output=True, text=True, timeout=240)
  assert first.returncode == -9, first.stderr[-2000:]
  killed = int((tmp_path / "steps" / "killed").read_text())
  with TrialStore(os.path.join(out, "trials.sqlite")) as store:
    assert store.count() == killed  # trials before it are all stored
    before = {(r["job_key"], r["rung"]): r for r in store.rungs()}
  assert before[(f"t{killed}", 0)]["go_on"] == 1  # its rung 0 was decided
  assert (f"t{killed}", 1) not in before
  ran_before = [t for t, _ in lc.steps_done(steps)]
  second = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
  assert second.returncode == 0, second.stderr[-2000:]
  ran_after = [t for t, _ in lc.steps_done(steps)][len(ran_before):]
  assert not set(ran_before) & set(ran_after)  # no finished child again
  assert killed in ran_after
  with TrialStore(os.path.join(out, "trials.sqlite")) as store:
    assert [t["trial_id"] for t in store.trials()] == list(range(24))
    after = {(r["job_key"], r["rung"]): r for r in store.rungs()}
  for key, row in before.items():  # no decided rung lost or changed
    assert after[key]["go_on"] == row["go_on"]
    assert after[key]["value"] == row["value"]
  _check_halving(os.path.join(out, "trials.sqlite"), steps)


def test_evaluator_classes_take_part_by_a_trial_parameter():
  class Old:
    def evaluate(self, config, trial_id, seed):
      return search.EvalResult("ok", 0.5)

  class New:
    def evaluate(self, config, trial_id, seed, trial=None):
      trial.report(0.2, 0.5)
      return search.EvalResult("ok", 0.2 if trial.should_stop() else 0.9)

  assert not executors.takes_part(Old()) and executors.takes_part(New())
  job = executors.TrialJob(0, (0,), {"a": 1}, 0, 0, rungs=(0.5,), name="t0")
  old = executors.evaluate_safely(Old(), job, lambda r: False)
  assert old.reward == 0.5 and "rung" not in old.metrics
  new = executors.evaluate_safely(New(), job, lambda r: False)
  assert new.reward == 0.2 and new.metrics["budget_fraction"] == 0.5
  assert evaluators.FunctionEvaluator(lc.CurveTask("/tmp")).takes_trial
  assert not evaluators.FunctionEvaluator(lc.plain_curve).takes_trial


def test_what_a_user_sees_of_the_halving(tmp_path, monkeypatch):
  """The log line counts the children stopped early; top_trials.md, the
  HTML report and the HParams metrics show each trial's rung."""
  from graph_nas.report import hparams, html as html_report
  from graph_nas.search import observers
  lines = []
  monkeypatch.setattr(observers.logging, "info",
                      lambda fmt, *a: lines.append(fmt % a))
  out = _run(tmp_path / "run", lc.CurveTask(tmp_path / "steps"),
             rungs="1/4,1/2", eta=2, max_trials=20)
  with TrialStore(out["store"]) as store:
    rows = store.trials()
  stopped = [r for r in rows if r["budget_fraction"] < 1 and
             r["cached_from"] is None]
  assert stopped
  trial_lines = [l for l in lines if l.startswith("trial ")]
  assert f"  {len(stopped)} stopped early" in trial_lines[-1]
  k = stopped[0]["rung"]
  share = "1/4" if k == 0 else "1/2"
  assert any(f"(stopped at {share} of its budget)" in l for l in trial_lines)
  table = (tmp_path / "run" / "top_trials.md").read_text()
  assert "budget trained" in table.splitlines()[0]
  # Full-budget trials rank first; the best child is the first row.
  lines = table.splitlines()
  cols = [c.strip() for c in lines[0].split("|")]
  first = [c.strip() for c in lines[2].split("|")]
  assert first[cols.index("trial")] == str(out["best"]["trial_id"])
  assert first[cols.index("budget trained")] == "all"
  page = html_report.build_html(str(tmp_path / "run"), top=20)
  assert "stopped early" in page and "(stopped at rung" in page
  m = hparams.trial_metrics(stopped[0])
  assert m["hparams/rung"] == k and m["hparams/budget_fraction"] < 1


class _Clock:
  """The search loop's `time` module with a clock a test moves forward
  (everything else is the real module's)."""

  def __init__(self):
    import time
    self._time, self.ahead = time, 0.0

  def __getattr__(self, name):
    return getattr(self._time, name)

  def time(self):
    return self._time.time() + self.ahead

  def monotonic(self):
    return self._time.monotonic() + self.ahead


@pytest.mark.parametrize("policy, walks_per_update, stored", [
    ("sync", 1, 5), ("sync", 3, 6), ("async", 3, 5)])
def test_timeout_minutes_ends_a_search_by_the_clock(
    tmp_path, monkeypatch, policy, walks_per_update, stored):
  """No child (sync: no batch) starts once timeout_minutes have passed;
  what runs then finishes and is stored (the benchmark's
  equal-wall-clock arms rest on this). The clock passes the limit during
  trial 4, so trials 0..4 are stored and no more (sync in batches of
  three: 0..5, the batch of trial 4 finishes)."""
  from graph_nas.search import loop
  clock = _Clock()
  monkeypatch.setattr(loop, "time", clock)
  started = []

  def reward(config):
    started.append(config)
    if len(started) == 5:
      clock.ahead += 60 * 10 + 1  # the 10 minutes have passed
    return lc.plain_curve(config)

  out = _run(tmp_path / "run", reward, max_trials=100, timeout_minutes=10,
             walks_per_update=walks_per_update, update_policy=policy)
  with TrialStore(out["store"]) as store:
    assert store.count() == stored
  assert len(started) == stored


def test_a_folder_resumes_only_with_the_same_rungs(tmp_path):
  from graph_nas.errors import IdentityMismatch
  task = lc.CurveTask(tmp_path / "steps")
  _run(tmp_path / "run", task, rungs="1/4,1/2", max_trials=4)
  # The same rungs written otherwise resume; other rungs are refused.
  _run(tmp_path / "run", task, rungs="0.25, 0.5", max_trials=6)
  with pytest.raises(IdentityMismatch, match="rungs") as e:
    _run(tmp_path / "run", task, rungs="none", max_trials=8)
  assert "[0.25, 0.5]" in str(e.value)


def test_the_pareto_front_holds_full_budget_children_only():
  from graph_nas.report import plots
  rows = [{"status": "ok", "budget_fraction": f, "rung": r,
           "metrics": {"flops": 1e6 * (i + 1), "val_accuracy": acc}}
          for i, (f, r, acc) in enumerate([(1.0, 2, 0.5), (0.25, 0, 0.3),
                                           (None, None, 0.4)])]
  kept, costs, accs = plots.cost_points(rows)
  assert list(accs) == [0.5, 0.4]  # the stopped child's 0.3 is left out
