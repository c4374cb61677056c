"""graph_nas.space.encode: the walk that builds a config."""

import json

import numpy as np
import pytest

from graph_nas import api, space as space_lib
from graph_nas.errors import GraphNasError


@pytest.mark.parametrize("name", ["stack_layers", "select_optimizer_b4",
                                  "cifar_cpu", "imagenet"])
def test_every_sampled_config_is_found_again(name):
  space = space_lib.load(name)
  rng = np.random.default_rng(0)
  found = 0
  for _ in range(15):
    walk = space.sample_random(rng, finish=True)
    config = space.decode(walk.actions)
    again = space.walk_of(json.loads(json.dumps(config)))
    assert space.decode(again) == config
    found += 1
  assert found == 15


def _cifar_config():
  space = space_lib.load("cifar_cpu")
  walk = space.sample_random(np.random.default_rng(1), finish=True)
  return space, space.decode(walk.actions)


def test_a_value_no_action_sets_names_its_vertex():
  space, config = _cifar_config()
  config["layers"][0]["kernel_size"] = 4
  with pytest.raises(GraphNasError) as e:
    space.walk_of(config)
  text = str(e.value)
  assert "vertex 'layer1_kernel'" in text
  assert "kernel=3, kernel=5" in text
  assert "the config has layers[0].kernel_size=4" in text


def test_a_default_no_action_changes_is_named_at_the_end():
  space, config = _cifar_config()
  config["stem_filters"] = 17
  with pytest.raises(GraphNasError, match=r"stem_filters=16, the config "
                     r"has stem_filters=17"):
    space.walk_of(config)
  config["stem_filters"], config["extra"] = 16, 1
  with pytest.raises(GraphNasError, match="the config has extra=1"):
    space.walk_of(config)


def test_not_a_dict_is_refused():
  space = space_lib.load("stack_layers")
  with pytest.raises(GraphNasError, match="a config is a dict"):
    space.walk_of([1, 2])


def test_added_counts_and_inactive_vertices():
  b = api.SpaceBuilder("s", start="a", max_steps=40)
  b.default("n", 0)
  b.default("mode", "x")
  (b.vertex("a").action("add", "a", key="n", op="ADD", value=1)
   .action("stop", "m"))
  b.vertex("m").action("mode", "k", key="mode", values=["x", "y"])
  # Decided only when mode is y: with mode x its two actions build the
  # same (tried once: the failed states are remembered).
  b.vertex("k").when("mode", "y").action("k", "end", key="k",
                                         values=[1, 2])
  b.vertex("end")
  space = b.build()
  assert space.decode(space.walk_of({"n": 7, "mode": "y", "k": 2})) == {
      "n": 7, "mode": "y", "k": 2}
  assert space.decode(space.walk_of({"n": 3, "mode": "x"})) == {
      "n": 3, "mode": "x"}
  with pytest.raises(GraphNasError):
    space.walk_of({"n": 45, "mode": "x"})  # beyond max_steps


def test_a_counted_loop_is_found_within_its_max_taken():
  from tests.test_space import COUNTED_LOOP
  space = space_lib.loads(COUNTED_LOOP)
  config = {"layers": [{"k": 3}, {"k": 5}, {"k": 5}, {"k": 3}]}
  assert space.decode(space.walk_of(config)) == config
  with pytest.raises(GraphNasError, match="len.layers.=4, the config has "
                     "len.layers.=5"):
    space.walk_of({"layers": [{"k": 3}] * 5})
