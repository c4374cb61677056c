"""graph_nas.api: spaces built in Python, searches with a user's reward."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from graph_nas import api, space as space_lib
from graph_nas.errors import GraphNasError
from graph_nas.search.results import EvalResult
from graph_nas.search.store import TrialStore
from tests import api_rewards
from tests.conftest import PROTOS, ROOT

SMALL = {"hidden_dim": 16, "embedding_dim": 8}


def stack_layers_builder():
  """The paper's stack-layers space (protos/stack_layers.textproto)."""
  b = api.SpaceBuilder(
      "stack_layers", start="stack", max_steps=100,
      description="Stack layers toy task, graph form (a self loop).",
      task="stack_layers", task_params={"target_layers": 10},
      linear_unroll=20)
  b.default("num_layers", 0)
  (b.vertex("stack", description="Add another layer?")
   .action("add", "stack", key="num_layers", op="ADD", value=1)
   .action("stop", "end"))
  b.vertex("end")
  return b


def select_optimizer_builder():
  """protos/select_optimizer_b2.textproto: a branch per optimizer."""
  b = api.SpaceBuilder(
      "select_optimizer_b2", start="optimizer",
      description="Select an optimizer (B=2) then its 4 hyperparameters, "
                  "graph form.",
      task="select_optimizer", task_params={"target_value": "50"})
  opt = b.vertex("optimizer")
  for name in ("sgd", "adam"):
    opt.action(name, f"{name}_p1", key="optimizer", value=name)
  for name in ("sgd", "adam"):
    for i in range(1, 5):
      b.vertex(f"{name}_p{i}").action(
          f"p{i}", f"{name}_p{i + 1}" if i < 4 else "end", key=f"p{i}",
          int_range=(1, 100))
  b.vertex("end")
  return b


def _same_decoding(a, b, n=200):
  rng = np.random.default_rng(0)
  for _ in range(n):
    walk = a.sample_random(rng)
    assert a.decode(walk.actions) == b.decode(walk.actions)
  assert a.num_global_actions == b.num_global_actions
  assert a.vertex_names == b.vertex_names


@pytest.mark.parametrize("builder, shipped", [
    (stack_layers_builder, "stack_layers.textproto"),
    (select_optimizer_builder, "select_optimizer_b2.textproto")])
def test_built_space_equals_the_shipped_textproto(builder, shipped):
  b = builder()
  built = b.build()
  loaded = space_lib.load(str(PROTOS / shipped))
  assert built.proto == loaded.proto
  assert built.max_steps == loaded.max_steps
  assert built.is_cyclic == loaded.is_cyclic
  _same_decoding(built, loaded)
  # Written out, it reads back to the same space.
  text = b.to_textproto()
  again = space_lib.loads(text, "again")
  assert again.proto == loaded.proto
  _same_decoding(again, loaded, n=20)


def test_write_and_load_by_path(tmp_path):
  path = stack_layers_builder().write(str(tmp_path / "s.textproto"))
  assert space_lib.load(path).proto == stack_layers_builder().build().proto


def _fails_like_the_textproto(b, vertex, action=None, words=""):
  with pytest.raises(GraphNasError) as built:
    b.build()
  with pytest.raises(GraphNasError) as loaded:
    space_lib.loads(b.to_textproto(validate=False), "<python>")
  for e in (built.value, loaded.value):
    assert e.vertex == vertex and e.action == action, str(e)
    assert words in str(e)
  assert built.value.reason == loaded.value.reason


def test_bad_spaces_fail_as_a_textproto_would_naming_the_vertex():
  b = stack_layers_builder()
  b.vertex("extra").action("go", "nowhere")
  _fails_like_the_textproto(b, "extra", "go", "'nowhere' is not a vertex")

  b = stack_layers_builder()
  b.vertex("stack")
  _fails_like_the_textproto(b, "stack", None, "duplicate vertex name")

  b = api.SpaceBuilder("loop", start="a")  # a cycle needs max_steps
  b.vertex("a").action("again", "a").action("stop", "z")
  b.vertex("z")
  with pytest.raises(GraphNasError, match="cycle"):
    b.build()

  b = stack_layers_builder()
  b.vertex("x").action("k", "end", key="bad key!", value=1)
  _fails_like_the_textproto(b, "x", "k", "key")


def test_bad_arguments_are_errors_naming_vertex_and_action():
  b = api.SpaceBuilder("s", start="a")
  v = b.vertex("a")
  for kwargs, words in [
      ({"values": [1, "x"]}, "mix types"),
      ({"values": []}, "empty"),
      ({"values": [True, False]}, "bools"),
      ({"value": 1, "values": [1]}, "at most one"),
      ({"int_range": (1,)}, "int_range"),
      ({"op": "MULTIPLY"}, "op 'MULTIPLY'"),
      ({"value": [1, 2]}, "list")]:
    with pytest.raises(GraphNasError, match=words) as e:
      v.action("act", "a", key="k", **kwargs)
    assert e.value.vertex == "a" and e.value.action == "act"
    assert "vertex 'a', action 'act'" in str(e.value)


def test_values_expand_to_one_edge_each():
  b = api.SpaceBuilder("s", start="a")
  (b.vertex("a").action("k", "b", key="kernel", values=[3, 5])
   .action("w", "b", key="width", values=[0.5, 1.0])
   .action("act", "b", key="activation", values=["relu", "swish"]))
  b.vertex("b")
  s = b.build()
  assert [e.name for e in s.edges[0]] == [
      "k=3", "k=5", "w=0.5", "w=1.0", "act=relu", "act=swish"]
  assert s.decode([1]) == {"kernel": 5}
  assert s.decode([5]) == {"activation": "swish"}


def test_function_evaluator_forms():
  cfg = {"num_layers": 7}
  assert api.FunctionEvaluator(api_rewards.reward).evaluate(
      cfg, 0, 0) == EvalResult("ok", 1.0)
  r = api.FunctionEvaluator(api_rewards.reward_with_metrics).evaluate(
      cfg, 3, 9)
  assert r.reward == 1.0 and r.metrics["trial_id"] == 3 and \
      r.metrics["seed"] == 9
  assert api.FunctionEvaluator(
      lambda c: EvalResult("failed", reason="no")).evaluate(cfg, 0, 0) \
      .status == "failed"
  for bad in (lambda c: "x", lambda c: {"acc": 1}, lambda c: float("nan")):
    with pytest.raises(GraphNasError):
      api.FunctionEvaluator(bad).evaluate(cfg, 0, 0)
  ev = pickle.loads(pickle.dumps(api.FunctionEvaluator(api_rewards.reward)))
  assert ev.evaluate(cfg, 0, 0).reward == 1.0


def test_in_process_search_with_a_python_reward(tmp_path):
  space = stack_layers_builder()
  space.proto.max_steps = 20
  result = api.search(space, api_rewards.reward, str(tmp_path / "run"),
                      max_trials=24, walks_per_update=3, seed=0,
                      learning_rate=0.05, **SMALL)
  with TrialStore(result["store"]) as store:
    rows = store.trials()
  assert [r["trial_id"] for r in rows] == list(range(24))
  rewards = [r["reward"] for r in rows if r["status"] == "ok"]
  assert all(r["reward"] == api_rewards.reward(r["config"]) for r in rows)
  best = result["best"]
  assert best["reward"] == max(rewards)
  # (That the controller learns is tests/test_algorithms.py's
  # test_reinforce_learns_stack_layers; 24 trials are too few to show it.)
  assert best["reward"] == api_rewards.reward(best["config"])
  with open(tmp_path / "run" / "best_architecture.json") as f:
    assert json.load(f)["trial_id"] == best["trial_id"]
  # The same folder resumes only with the same reward function.
  with pytest.raises(GraphNasError, match="trained with evaluate="
                     "'tests.api_rewards:reward', not"):
    api.search(space, api_rewards.reward_with_metrics,
               str(tmp_path / "run"), max_trials=30, walks_per_update=3,
               seed=0, learning_rate=0.05, **SMALL)


def test_search_refuses_a_lambda_on_other_processes(tmp_path):
  with pytest.raises(GraphNasError, match="top level of a module"):
    api.search(stack_layers_builder(), lambda c: 1.0, str(tmp_path),
               executor="process", workers=2)


def test_process_executor_search_with_a_module_level_reward(tmp_path):
  result = api.search(stack_layers_builder(),
                      api_rewards.reward_with_metrics, str(tmp_path / "r"),
                      algorithm="random", max_trials=6, walks_per_update=2,
                      executor="process", workers=2, reuse_results=False)
  with TrialStore(result["store"]) as store:
    rows = store.trials()
  assert [r["status"] for r in rows] == ["ok"] * 6
  pids = {r["metrics"]["pid"] for r in rows}
  assert os.getpid() not in pids
  assert all(r["reward"] == api_rewards.reward(r["config"]) for r in rows)


ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")


def _launch(*args):
  return subprocess.run([sys.executable, "-m", "graph_nas.launch", *args],
                        cwd=ROOT, env=ENV, capture_output=True, text=True,
                        timeout=300, check=False)


def test_launcher_with_a_user_evaluator(tmp_path):
  out = tmp_path / "run"
  r = _launch("--space=protos/stack_layers.textproto",
              "--evaluator=tests.api_rewards:reward", "--algorithm=random",
              "--max_trials=5", f"--out_dir={out}")
  assert r.returncode == 0, r.stderr[-3000:]
  with TrialStore(str(out / "trials.sqlite")) as store:
    rows = store.trials()
  assert len(rows) == 5
  assert all(r["reward"] == api_rewards.reward(r["config"]) for r in rows)


@pytest.mark.parametrize("args, words", [
    (["--evaluator=tests.api_rewards"], "expected module:function"),
    (["--evaluator=no_such_module_x:f"], "cannot import module"),
    (["--evaluator=tests.api_rewards:nope"], "has no 'nope'"),
    (["--evaluator=tests.api_rewards:reward", "--epochs=3"],
     "--epochs"),
])
def test_launcher_bad_evaluator_is_one_line(tmp_path, args, words):
  r = _launch("--space=protos/stack_layers.textproto", *args,
              f"--out_dir={tmp_path}")
  assert r.returncode != 0
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
  assert words in lines[0]


def test_launcher_space_without_task_needs_an_evaluator(tmp_path):
  b = api.SpaceBuilder("mine", start="a")
  b.vertex("a").action("x", "b", key="x", values=[1, 2])
  b.vertex("b")
  path = b.write(str(tmp_path / "mine.textproto"))
  r = _launch(f"--space={path}", f"--out_dir={tmp_path / 'r'}")
  assert r.returncode != 0 and "--evaluator" in r.stderr


def test_ray_executor_search_with_a_module_level_reward(tmp_path):
  pytest.importorskip("ray")
  proc = subprocess.run([sys.executable, "-m", "tests.api_ray_check",
                         str(tmp_path / "r")], capture_output=True,
                        text=True, cwd=ROOT, env=ENV, timeout=300,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert line, proc.stdout[-2000:]
  r = json.loads(line[-1][len("RESULT "):])
  assert r["statuses"] == ["ok"] * 4 and r["rewards_match"]
  assert r["driver_pid"] not in r["worker_pids"]
