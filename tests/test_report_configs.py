"""The reports of a search with a branch and a loop (tests/report_space.py:
an optimizer, its learning rate, 1 to 3 layers with a width each): every
trial's whole config in the tables and the HTML, the failed trials with
their reasons, one trial numbering from the log to the HTML, and for a
search without a learned policy (evolution) what its best trials chose."""

import os
import re
import types

import numpy as np
import pytest

from graph_nas import api
from graph_nas.errors import GraphNasError
from graph_nas.report import hparams, html as html_report, policy as \
    policy_lib, trials as trials_lib
from graph_nas.search import observers
from graph_nas.search.store import TrialStore
from tests import report_space
from tests.conftest import require_tool

MAX_TRIALS = 20
LINE = re.compile(r"^trial (\d+) \((\d+) of (\d+)\) ")
CONFIG_COLUMNS = ["learning_rate", "optimizer", "layers (width)"]
EMPTY_FOR_A_TOY = ("val accuracy", "multiply-adds (M)", "params (M)",
                   "budget trained")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """An evolution search of 20 trials (seconds), its log lines captured."""
  out = tmp_path_factory.mktemp("optimizer_layers")
  lines = []
  with pytest.MonkeyPatch.context() as mp:
    # absl's handler may be set up by earlier tests so that caplog sees
    # nothing: read what the progress log says directly.
    mp.setattr(observers.logging, "info",
               lambda fmt, *args: lines.append(fmt % args))
    result = api.search(report_space.builder(), report_space.reward,
                        str(out), max_trials=MAX_TRIALS,
                        algorithm="evolution", executor="inprocess", seed=0)
  with TrialStore(result["store"]) as store:
    rows = store.trials()
  failed = [r for r in rows if r["status"] != "ok"]
  # sgd at 0.1 fails: a quarter of the random walks, so the seeded search
  # has such a trial.
  assert any(report_space.FAIL_REASON in r["reason"] for r in failed)
  return types.SimpleNamespace(out=out, result=result, rows=rows,
                               failed=failed, lines=lines)


def _cells(line):
  return [c.strip() for c in line.strip().strip("|").split("|")]


def _expected(config):
  """The config cells: learning rate, optimizer, the widths."""
  return [f"{config['learning_rate']:g}", config["optimizer"],
          "; ".join(str(l["width"]) for l in config["layers"])]


def test_top_table_shows_every_decision(run):
  by_id = {r["trial_id"]: r for r in run.rows}
  md = (run.out / "top_trials.md").read_text()
  top = md.split("\n\n")[0].splitlines()
  assert top == run.result["table"].split("\n\n")[0].splitlines()
  header = _cells(top[0])
  # Every decided key, after the results; no column a toy run leaves empty.
  assert header[:3] == ["rank", "trial", "reward"]
  assert header[-3:] == CONFIG_COLUMNS
  assert not set(EMPTY_FOR_A_TOY) & set(header)
  rows = [_cells(l) for l in top[2:]]
  assert len(rows) == 10
  for j in range(len(header)):
    assert any(r[j] not in ("-", "") for r in rows), header[j]
  seen = set()
  for r in rows:
    trial = by_id[int(r[1])]
    assert trial["status"] == "ok"
    assert r[2] == f"{trial['reward']:.4f}"
    assert r[-3:] == _expected(trial["config"]), (r, trial["config"])
    seen.add(tuple(r[-3:]))
  assert len(seen) == len(rows)  # different configs never print alike
  # Rewards as ranked.
  assert [float(r[2]) for r in rows] == sorted(
      (float(r[2]) for r in rows), reverse=True)


def test_same_layers_with_another_optimizer_print_differently():
  rows = [{"trial_id": 0, "reward": 1.0, "seconds": 0.0, "metrics": {},
           "config": {"optimizer": "adam", "learning_rate": 0.001,
                      "layers": [{"width": 128}, {"width": 64},
                                 {"width": 32}]}},
          {"trial_id": 4, "reward": 0.9, "seconds": 0.0, "metrics": {},
           "config": {"optimizer": "sgd", "learning_rate": 0.1,
                      "layers": [{"width": 128}, {"width": 64},
                                 {"width": 32}]}}]
  table = trials_lib.trial_table(rows)
  assert table.columns == ["rank", "trial", "reward"] + CONFIG_COLUMNS
  assert table.rows == [("1", "0", "1.0000", "0.001", "adam",
                         "128; 64; 32"),
                        ("2", "4", "0.9000", "0.1", "sgd", "128; 64; 32")]
  assert trials_lib.config_text(rows[1]["config"]) == (
      "learning_rate: 0.1, optimizer: sgd, layers (width): 128; 64; 32")


def _reward_failures(run):
  """The failed trials that the reward function failed (the others: walks
  cut off by max_steps, never decoded)."""
  return [r for r in run.failed if report_space.FAIL_REASON in r["reason"]]


def test_failed_trials_are_listed_with_their_reasons(run):
  md = trials_lib.trials_markdown(run.rows, top=10)
  assert f"Failed trials: {len(run.failed)} of {MAX_TRIALS}" in md
  section = md.split("Failed trials:")[1].splitlines()
  header, listed = _cells(section[2]), [_cells(l) for l in section[4:]]
  assert header[:2] == ["trial", "reason"]
  assert len(listed) == min(len(run.failed), trials_lib.FAILED_LISTED)
  assert [c[0] for c in listed] == [str(r["trial_id"]) for r in
                                    run.failed[:len(listed)]]
  for cells, row in zip(listed, run.failed):
    assert cells[1] == trials_lib.reason_text(row)
    if row["config"]:  # decoded: its config beside the reason
      assert cells[-3:] == _expected(row["config"])
  # The reward function's own failure, named by its reason.
  failure = _reward_failures(run)[0]
  text = trials_lib.markdown(trials_lib.failed_table([failure]))
  assert text.splitlines()[2].startswith(
      f"| {failure['trial_id']} | FloatingPointError: "
      f"{report_space.FAIL_REASON}")
  # A run without failures has no such section.
  ok = [r for r in run.rows if r["status"] == "ok"]
  assert "Failed" not in trials_lib.trials_markdown(ok)


def test_top_trials_md_lists_the_failed_trials(run):
  md = (run.out / "top_trials.md").read_text()
  assert f"Failed trials: {len(run.failed)} of {MAX_TRIALS}" in md
  assert report_space.FAIL_REASON in md


def test_log_names_each_trial_by_its_store_id(run):
  logged = {}
  for line in run.lines:
    m = LINE.match(line)
    if m:
      tid, nth, total = map(int, m.groups())
      assert nth == tid + 1 and total == MAX_TRIALS, line
      logged[tid] = line
  # log_every=1: a line per trial, each under the id the store gave it.
  assert sorted(logged) == [r["trial_id"] for r in run.rows]
  for r in run.failed:
    assert "FAILED" in logged[r["trial_id"]]
  for r in _reward_failures(run):
    assert report_space.FAIL_REASON in logged[r["trial_id"]]
  # TensorBoard's HParams sessions carry the same ids.
  sessions = sorted(os.listdir(run.out / "tensorboard" / "trials"))
  assert sessions == [hparams.trial_run(r["trial_id"]).split("/")[-1]
                      for r in run.rows]


def test_html_shows_configs_failures_and_what_the_best_trials_chose(run):
  require_tool("dot", "graphviz")
  page = html_report.build_html(str(run.out), space=report_space.builder())
  for column in CONFIG_COLUMNS:
    assert f"<th>{column}</th>" in page
  assert f"Failed trials ({len(run.failed)} of {MAX_TRIALS})" in page
  assert report_space.FAIL_REASON in page
  assert "traceback" in page.lower()  # folded under each failed trial
  # Nothing that says nothing: no cost, no Pareto plot, no controller.
  assert "multiply-adds" not in page and "Pareto" not in page
  assert "population_size" in page
  for setting in ("hidden_dim", "entropy_weight", "queue_size"):
    assert f"<td>{setting}</td>" not in page
  assert "Learned policy" not in page and "uniform" not in page
  assert "What the best trials chose" in page
  ok = [r for r in run.rows if r["status"] == "ok"]
  k = html_report.best_trials_count(len(ok))
  assert f"the {k} best trials (of {len(ok)} that succeeded)" in page
  assert page.count('src="data:image/png;base64,') == 2  # reward, graph


def test_html_of_a_space_built_in_python_says_how_to_draw_it(run):
  page = html_report.build_html(str(run.out))
  assert "a space built in Python" in page
  assert "What the best trials chose" in page


def test_trials_policy_counts_the_actions_of_the_walks():
  space = report_space.builder().build()
  rng = np.random.default_rng(3)
  walks = [w.actions for w in (space.sample_random(rng) for _ in range(60))
           if not w.truncated][:40]
  assert len(walks) == 40
  pol = policy_lib.trials_policy(space, walks, "40 walks")
  opt = space.vertex_index["optimizer"]
  adam = [space.decode(w)["optimizer"] for w in walks].count("adam")
  np.testing.assert_allclose(pol.probs[opt], [(40 - adam) / 40, adam / 40])
  assert pol.visit_share[opt] == 1.0
  # One visit of "more" per layer; "done" there once per walk.
  more = space.vertex_index["more"]
  layers = sum(len(space.decode(w)["layers"]) for w in walks)
  assert pol.visits[more] == layers
  np.testing.assert_allclose(pol.probs[more], [1 - 40 / layers,
                                               40 / layers])
  with pytest.raises(GraphNasError, match="walk 1 of the trials"):
    policy_lib.trials_policy(space, [walks[0], (5, 5)], "bad")
