"""Walks that max_steps stops before a terminal vertex (issue 28).

Such a walk is valid (a sampler may propose it) but has no config: decode
refuses it, naming max_steps and the vertex where it stopped, so the user's
function never sees a half-built layer and the search records a failed
trial. Loading warns when max_steps can stop a walk half way round a loop,
and names the vertices no walk can reach (at all, or within max_steps).
"""

import json
import warnings

import numpy as np
import pytest

from graph_nas import api, space as space_lib
from graph_nas.errors import GraphNasError, SpaceWarning
from graph_nas.search.store import TrialStore
from tests.conftest import PROTOS

WIDTHS = [8, 16]


def layer_loop(max_steps: int, island: bool = False) -> api.SpaceBuilder:
  """Each turn of the loop add -> width -> more appends a layer and gives
  it a width; "more" goes round again or ends. A walk of k layers takes
  3k steps."""
  b = api.SpaceBuilder("layer_loop", start="add", max_steps=max_steps)
  b.vertex("add").action("layer", "width", key="layers", op="APPEND")
  b.vertex("width").action("w", "more", key="layers[-1].width",
                           values=WIDTHS)
  b.vertex("more").action("again", "add").action("done", "end")
  b.vertex("end")
  if island:
    b.vertex("island").action("x", "end")
  return b


def _build(b: api.SpaceBuilder):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", SpaceWarning)
    return b.build()


def _warnings_of(build):
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    space = build()
  return space, [str(w.message) for w in caught
                 if issubclass(w.category, SpaceWarning)]


# ------------------------------------------------------------------ decode
def test_a_walk_cut_mid_layer_is_refused_naming_max_steps():
  s = _build(layer_loop(max_steps=4))
  # One layer, then "again" and a second layer's APPEND: step 4 is at
  # "width", the second layer still {}.
  cut = [0, 1, 0, 0]
  walk = s.check_walk(cut)  # a valid walk ...
  assert walk.truncated and s.vertex_names[walk.vertices[-1]] == "width"
  with pytest.raises(GraphNasError) as info:  # ... with no config
    s.decode(cut)
  assert str(info.value) == (
      "<python>: vertex 'width': max_steps 4 stopped the walk here after 4 "
      "steps, before a terminal vertex: an unfinished walk has no config")
  assert s.decode([0, 1, 1]) == {"layers": [{"width": 16}]}


def test_every_walk_either_decodes_to_whole_layers_or_is_refused():
  for max_steps in range(3, 11):
    s = _build(layer_loop(max_steps))
    refused = decoded = 0
    for acts in space_lib.exact_walks(s):
      if s.check_walk(acts).truncated:
        with pytest.raises(GraphNasError,
                           match=f"max_steps {max_steps} stopped"):
          s.decode(acts)
        refused += 1
      else:
        layers = s.decode(acts)["layers"]
        assert len(layers) == len(acts) // 3
        assert all(set(layer) == {"width"} for layer in layers)
        decoded += 1
    assert refused and decoded, max_steps


def test_the_linear_twin_refuses_a_replay_its_unroll_cuts():
  b = layer_loop(max_steps=12)
  b.proto.linear_unroll = 4
  s = _build(b)
  twin = s.linear_twin()
  # Slots add@0 width@1 more@2 add@3 width@4... (4 steps): "again" at
  # more@2, then the APPEND at add@3, and the unroll ends at "width".
  with pytest.raises(GraphNasError, match="vertex 'width': linear_unroll 4 "
                     "stopped the walk here after 4 steps"):
    twin.decode([0, 0, 0, 0])
  assert twin.decode([0, 1, 1, 0]) == {"layers": [{"width": 16}]}


def test_random_walks_that_finish_never_hit_max_steps():
  s = _build(layer_loop(max_steps=4))
  names = dict(zip(s.vertex_names, s.steps_to_terminal))
  assert names == {"add": 3, "width": 2, "more": 1, "end": 0}
  rng = np.random.default_rng(0)
  plain = [s.sample_random(rng) for _ in range(200)]
  assert any(w.truncated for w in plain)  # the uniform walk is cut at times
  finished = [s.sample_random(rng, finish=True) for _ in range(200)]
  assert not any(w.truncated for w in finished)
  # Both walks that fit in 4 steps (one layer of either width) are drawn.
  assert {tuple(w.actions) for w in finished} == {(0, 0, 1), (0, 1, 1)}


# ------------------------------------------------------------------ search
def test_a_search_never_hands_the_reward_a_half_built_layer(tmp_path):
  s = _build(layer_loop(max_steps=4))
  seen = []

  def reward(config):
    seen.append(config)
    return sum(layer["width"] for layer in config["layers"]) / 16.0

  result = api.search(s, reward, str(tmp_path / "run"), algorithm="random",
                      max_trials=15, seed=0, executor="inprocess",
                      reuse_results=False)
  with TrialStore(result["store"]) as store:
    rows = store.trials()
  assert len(rows) == 15
  failed = [r for r in rows if r["status"] != "ok"]
  # Half the uniform walks go round again and are cut at "width".
  assert failed and len(failed) < len(rows)
  for r in failed:
    assert r["reason"] == (
        "decode: <python>: vertex 'width': max_steps 4 stopped the walk "
        "here after 4 steps, before a terminal vertex: an unfinished walk "
        "has no config"), r
  # The reward ran on every other trial, and never on a half-built layer.
  assert len(seen) == len(rows) - len(failed)
  for c in seen:
    assert c["layers"] and all(set(l) == {"width"} for l in c["layers"]), c
  for r in rows:
    if r["status"] == "ok":
      assert r["reward"] == r["config"]["layers"][0]["width"] / 16.0


# ---------------------------------------------------------------- warnings
def test_a_max_steps_that_cuts_a_loop_turn_is_a_warning():
  _, messages = _warnings_of(lambda: layer_loop(max_steps=4).build())
  assert messages == [
      "<python>: max_steps 4 can stop a walk in the middle of a loop's turn,"
      " at 'width' in the loop entered at 'add': such a walk reaches no "
      "terminal vertex and has no config (a failed trial, its reason naming"
      " max_steps); max_steps 6 stops walks only between turns"]
  # At the suggested bound walks are cut only where a turn starts: no
  # warning (they still fail, but no layer is left half built).
  for steps in (3, 6, 9, 30):
    s, messages = _warnings_of(lambda: layer_loop(steps).build())
    assert messages == [], steps
    ends = {s.vertex_names[s.check_walk(a).vertices[-1]]
            for a in space_lib.exact_walks(s)}
    assert ends == {"end", "add"}, steps
  _, messages = _warnings_of(lambda: layer_loop(max_steps=8).build())
  assert messages and "at 'more' in the loop entered at 'add'" in \
      messages[0] and "max_steps 9 stops" in messages[0]


def test_unreachable_vertices_are_named():
  _, messages = _warnings_of(lambda: layer_loop(6, island=True).build())
  assert messages == ["<python>: vertices not reachable from start 'add': "
                      "island"]


def test_vertices_no_walk_within_max_steps_reaches_are_named():
  b = api.SpaceBuilder("late", start="a", max_steps=3)
  b.vertex("a").action("loop", "a").action("go", "b").action("stop", "end")
  b.vertex("b").action("go", "c")
  b.vertex("c").action("go", "d")
  b.vertex("d").action("go", "end")
  b.vertex("end")
  s, messages = _warnings_of(b.build)
  assert messages == ["<python>: max_steps 3 is too short for any walk "
                      "through 'b' (needs 4 steps), 'c' (needs 4 steps), "
                      "'d' (needs 4 steps)"]
  assert s.reachable[s.vertex_index["d"]]  # reachable, but never in time


def test_a_max_steps_that_cuts_every_walk_is_an_error():
  b = api.SpaceBuilder("short", start="a", max_steps=2)
  b.vertex("a").action("loop", "a").action("go", "b")
  b.vertex("b").action("go", "c")
  b.vertex("c").action("go", "end")
  b.vertex("end")
  with pytest.raises(GraphNasError, match=r"^<python>: max_steps 2 is "
                     r"shorter than the shortest walk from the start to a "
                     r"terminal vertex \(3 steps\): every walk would be cut "
                     r"short$"):
    b.build()


@pytest.mark.parametrize("path", sorted(PROTOS.glob("*.textproto")),
                         ids=lambda p: p.name)
def test_shipped_spaces_load_without_warnings(path):
  with warnings.catch_warnings():
    warnings.simplefilter("error", SpaceWarning)
    s = space_lib.load(str(path))
  rng = np.random.default_rng(0)
  for _ in range(20):
    json.dumps(s.decode(s.sample_random(rng, finish=True).actions))
