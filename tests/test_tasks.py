"""Tests of the toy-task rewards (paper sections 4.1, 4.2)."""

import pytest

from graph_nas import space as space_lib
from graph_nas.search import tasks
from graph_nas.errors import GraphNasError
from tests.conftest import PROTOS


def test_stack_layers_reward():
  r = tasks.stack_layers_reward
  assert r({"num_layers": 10}) == 1.0
  assert r({"num_layers": 0}) == 0.0
  assert r({"num_layers": 20}) == 0.0
  assert r({"num_layers": 35}) == 0.0
  assert r({"num_layers": 7}) == pytest.approx(1 - 9 / 100)
  assert r({"num_layers": 13}) == r({"num_layers": 7})
  with pytest.raises(GraphNasError):
    r({})


def test_select_optimizer_reward_follows_the_paper():
  raw = tasks.select_optimizer_raw_reward
  cfg = {"optimizer": "adam", "p1": 50, "p2": 50, "p3": 50, "p4": 50}
  assert raw(cfg) == 0.0
  assert raw({**cfg, "p1": 40}) == -100 - 3 * 2500
  assert raw({**cfg, "p3": 53}) == -9 - 2500
  # Only the first wrong p counts; later ones are charged 50^2 each.
  assert raw({**cfg, "p2": 49, "p3": 1}) == -1 - 2 * 2500
  norm = tasks.select_optimizer_reward
  assert norm(cfg) == 1.0
  assert norm({**cfg, "p1": 100}) == 0.0
  assert norm({**cfg, "p1": 1}) == pytest.approx(1 - (49**2 + 7500) / 10000)
  assert 0.0 <= norm({**cfg, "p4": 3}) <= 1.0


def test_reward_fn_for_spaces():
  s = space_lib.load(str(PROTOS / "stack_layers.textproto"))
  assert tasks.reward_fn_for(s)({"num_layers": 10}) == 1.0
  bad = space_lib.loads('task: "nope" start: "a" vertices { name: "a" }')
  with pytest.raises(GraphNasError, match="not a toy task"):
    tasks.reward_fn_for(bad)
