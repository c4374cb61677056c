"""Tests of graph_nas.child / graph_nas.child.block_args and the image spaces.

Building a Keras child costs about 1-2 s on 2 CPU cores (variable creation
dominates), so of the 50 random walks drawn from each image space every one
is decoded, validated, round-tripped through block strings and costed
analytically, and the first CHILD_BUILDS of them (default 6; set the
environment variable GRAPH_NAS_CHILD_BUILDS=50 for all of them, about 6
minutes) are built as Keras models and run forward on 2 images. The analytic
cost (estimate_cost) of every built child must equal count_params /
count_flops of the model.
"""

import json
import os

import keras
import numpy as np
import pytest

from graph_nas import child
from graph_nas import space as space_lib
from graph_nas.child.block_args import (BlockArgs, ChildConfigError, decode_block_string, encode_block_string)
from graph_nas.errors import GraphNasError
from tests.conftest import PROTOS

WALKS = 50
CHILD_BUILDS = int(os.environ.get("GRAPH_NAS_CHILD_BUILDS", "6"))
# (space, input size used in the test, classes). ImageNet children are built
# at 64x64 to keep the forward pass cheap; the architecture does not depend
# on the input size.
IMAGE_SPACES = [("cifar", 32, 10), ("cifar_linear", 32, 10),
                ("imagenet", 64, 1000), ("imagenet_linear", 64, 1000)]


@pytest.fixture
def fresh_session():
  """Frees the Keras models of a test that builds several (not autouse:
  clear_session costs half a second)."""
  yield
  keras.backend.clear_session()


# -------------------------------------------------------------- block args
MNASNET_A1 = ["r1_k3_s11_e1_i32_o16_noskip", "r2_k3_s22_e6_i16_o24",
              "r3_k5_s22_e3_i24_o40_se0.25", "r4_k3_s22_e6_i40_o80",
              "r2_k3_s11_e6_i80_o112_se0.25", "r3_k5_s22_e6_i112_o160_se0.25",
              "r1_k3_s11_e6_i160_o320"]


@pytest.mark.parametrize("text", MNASNET_A1 + [
    "r2_k3_s22_e6_i16_o24_se0.25_aswish", "r1_k7_s12_e3_i8_o8_se1e-05",
    "r3_k1_s11_e1_i1_o1_arelu_noskip"])
def test_block_string_round_trips(text):
  block = decode_block_string(text)
  assert decode_block_string(encode_block_string(block)) == block
  assert BlockArgs.decode(block.encode()) == block
  if "arelu" not in text:  # relu is the default, so its token is dropped
    assert encode_block_string(block) == text


def test_block_string_fields():
  b = decode_block_string("r2_k3_s22_e6_i16_o24_se0.25_aswish")
  assert b == BlockArgs(kernel_size=3, num_repeat=2, input_filters=16,
                        output_filters=24, expand_ratio=6, strides=(2, 2),
                        se_ratio=0.25, id_skip=True, activation="swish")
  first = decode_block_string("r1_k3_s11_e1_i32_o16_noskip")
  assert not first.id_skip and not first.has_se
  assert first.activation == "relu"
  # The first block carries stride and width change, the others do not.
  assert b.block_strides(0) == (2, 2) and b.block_strides(1) == (1, 1)
  assert not b.has_residual(0) and b.has_residual(1)
  assert b.se_filters(0) == 4 and b.se_filters(1) == 6  # int(in * 0.25)
  assert decode_block_string("r1_k3_s11_e1_i3_o3_se0.1").se_filters(0) == 1


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("r2_k3", "missing"),
    ("r2_k3_s2_e6_i16_o24", "unknown token 's2'"),
    ("r2_k4_s22_e6_i16_o24", "odd"),
    ("r2_k3_s22_e6_i16_o24_x1", "unknown token 'x1'"),
    ("r2_r3_k3_s22_e6_i16_o24", "repeats a field"),
    ("r0_k3_s22_e6_i16_o24", "num_repeat"),
    ("r2_k3_s22_e6_i0_o24", "input_filters"),
    ("r2_k3_s02_e6_i16_o24", "stride"),
    ("r2_k3_s22_e6_i16_o24_se1.5", "se_ratio"),
    ("r2_k3_s22_e6_i16_o24_se1.2.3", "not a number"),
    ("r2_k3_s22_e6_i16_o24_agelu", "activation"),
    ("r2_k3_s22_e6_i16_o24__aswish", "unknown token ''"),
    ("R2_k3_s22_e6_i16_o24", "unknown token"),
])
def test_bad_block_strings(text, match):
  with pytest.raises(GraphNasError, match=match) as info:
    decode_block_string(text)
  assert isinstance(info.value, ValueError)
  assert isinstance(info.value, ChildConfigError)


def test_block_args_validate_and_are_plain_data():
  with pytest.raises(ChildConfigError, match="kernel_size must be odd"):
    BlockArgs(4, 1, 8, 8, 6)
  with pytest.raises(ChildConfigError, match="expand_ratio"):
    BlockArgs(3, 1, 8, 8, 0)
  with pytest.raises(ChildConfigError, match="integer"):
    BlockArgs(3, True, 8, 8, 6)
  b = BlockArgs(3, 1, 8, 8, 6, strides=2)
  assert b.strides == (2, 2) and b.se_ratio == 0.0
  assert hash(b) == hash(BlockArgs(3, 1, 8, 8, 6, strides=(2, 2)))
  with pytest.raises(Exception):
    b.kernel_size = 5  # frozen


# ---------------------------------------------------- the shipped spaces
def _load(name):
  return space_lib.load(str(PROTOS / f"{name}.textproto"))


def test_image_spaces_load_without_warnings(recwarn):
  for name, _, _ in IMAGE_SPACES:
    s = _load(name)
    assert s.proto.task == "image_classification"
    assert not s.is_cyclic
  assert not recwarn.list


def test_image_space_structure():
  rng = np.random.default_rng(7)
  strides = {"cifar": [1, 2, 1, 2, 1, 1], "imagenet": [1, 2, 2, 2, 1, 2, 1]}
  for name, max_layers in (("cifar", 6), ("imagenet", 7)):
    graph, linear = _load(name), _load(f"{name}_linear")
    assert graph.proto.task_params["dataset"] == linear.proto.task_params[
        "dataset"] == {"cifar": "cifar10", "imagenet": "imagenet2012"}[name]
    kwargs = child.kwargs_from_task_params(graph.proto.task_params)
    assert kwargs["num_classes"] == (10 if name == "cifar" else 1000)
    counts = set()
    for _ in range(300):
      config = graph.decode(graph.sample_random(rng).actions)
      n = len(config["layers"])
      counts.add(n)
      assert [l["stride"] for l in config["layers"]] == strides[name][:n]
    # Uniform "continue or stop": every depth from 1 to the cap is sampled.
    assert counts == set(range(1, max_layers + 1))
    for _ in range(20):
      config = linear.decode(linear.sample_random(rng).actions)
      assert len(config["layers"]) == max_layers
      assert set(config["layers"][0]) == set(child.LAYER_DEFAULTS) - {"skip"}
    # The derived linear twin keeps the continue decisions as slots.
    twin = graph.linear_twin()
    assert twin.max_steps == linear.max_steps + max_layers - 1
    for _ in range(20):
      config = twin.decode(twin.sample_random(rng).actions)
      assert 1 <= len(config["layers"]) <= max_layers
      child.blocks_from_config(config)


@pytest.mark.parametrize("name, size, classes", IMAGE_SPACES,
                         ids=[s[0] for s in IMAGE_SPACES])
def test_random_walks_build_children(name, size, classes, fresh_session):
  s = _load(name)
  rng = np.random.default_rng(2024)
  images = np.random.default_rng(0).normal(
      size=(2, size, size, 3)).astype(np.float32)
  for i in range(WALKS):
    config = s.decode(s.sample_random(rng).actions)
    json.dumps(config)
    blocks = child.blocks_from_config(config)
    for block in blocks:
      assert decode_block_string(encode_block_string(block)) == block
    cost = child.estimate_cost(config, (size, size, 3), classes)
    assert cost["params"] > cost["trainable_params"] > 0
    assert cost["flops"] > 0
    if i >= CHILD_BUILDS:
      continue
    model = child.build_child(config, input_shape=(size, size, 3),
                              num_classes=classes)
    logits = model(images, training=False)
    assert tuple(logits.shape) == (2, classes)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(logits)))
    assert child.count_params(model) == cost["params"]
    assert child.count_params(model, trainable_only=True) == cost[
        "trainable_params"]
    assert child.count_flops(model) == cost["flops"]
    keras.backend.clear_session()


# ------------------------------------------------------- the Keras model
# A fixed small architecture, counted by hand below.
SMALL = {
    "stem_filters": 8,
    "head_filters": 32,
    "layers": [
        # 2 blocks 8 -> 8, no expansion, no SE: a residual in both blocks.
        {"kernel_size": 3, "filters": 8, "repeats": 2, "expand_ratio": 1,
         "se_ratio": 0, "activation": "relu", "stride": 1},
        # 1 block 8 -> 16, expand 3 (24 inner), 5x5, stride 2, SE 0.25.
        {"kernel_size": 5, "filters": 16, "repeats": 1, "expand_ratio": 3,
         "se_ratio": 0.25, "activation": "swish", "stride": 2},
    ],
}


def test_params_and_flops_equal_a_hand_count():
  model = child.build_child(SMALL, input_shape=(8, 8, 3), num_classes=10)
  bn = lambda c: 4 * c  # gamma, beta, moving mean, moving variance
  conv = lambda k, cin, cout: k * k * cin * cout  # no bias (BN follows)
  # Stem: 3x3 conv 3 -> 8, BN.
  params = conv(3, 3, 8) + bn(8)
  # Layer 1, each of 2 blocks: 3x3 depthwise on 8, BN, 1x1 project 8 -> 8, BN.
  params += 2 * (3 * 3 * 8 + bn(8) + conv(1, 8, 8) + bn(8))
  # Layer 2: expand 8 -> 24 + BN; 5x5 depthwise on 24 + BN; SE squeeze width
  # max(1, int(8 * 0.25)) = 2: conv 24 -> 2 and 2 -> 24 with biases;
  # project 24 -> 16 + BN.
  params += conv(1, 8, 24) + bn(24) + 5 * 5 * 24 + bn(24)
  params += (24 * 2 + 2) + (2 * 24 + 24)
  params += conv(1, 24, 16) + bn(16)
  # Head: 1x1 conv 16 -> 32 + BN; Dense 32 -> 10 with bias.
  params += conv(1, 16, 32) + bn(32) + 32 * 10 + 10
  assert params == 216 + 32 + 2 * 200 + 288 + 696 + 122 + 448 + 640 + 330
  assert child.count_params(model) == params
  trainable = params - 2 * (8 + 2 * (8 + 8) + 24 + 24 + 16 + 32)
  assert child.count_params(model, trainable_only=True) == trainable

  # Multiply-adds: output pixels x kernel volume x channels.
  flops = 8 * 8 * conv(3, 3, 8)                      # stem at 8x8
  flops += 2 * (8 * 8 * 3 * 3 * 8 + 8 * 8 * conv(1, 8, 8))  # layer 1
  flops += 8 * 8 * conv(1, 8, 24)                    # expand at 8x8
  flops += 4 * 4 * 5 * 5 * 24                        # depthwise, stride 2
  flops += 24 * 2 + 2 * 24 + 4 * 4 * 24              # SE convs + scaling
  flops += 4 * 4 * conv(1, 24, 16)                   # project at 4x4
  flops += 4 * 4 * conv(1, 16, 32) + 32 * 10         # head conv + dense
  assert child.count_flops(model) == flops
  assert child.estimate_cost(SMALL, (8, 8, 3), 10) == {
      "params": params, "trainable_params": trainable, "flops": flops}


def test_layer_names_residuals_and_bn_momentum():
  model = child.build_child(SMALL, input_shape=(8, 8, 3), num_classes=10)
  names = [l.name for l in model.layers]
  for expected in ["stem_conv", "layer1_block1_dwconv", "layer1_block2_add",
                   "layer2_block1_expand_conv", "layer2_block1_se_reduce",
                   "layer2_block1_se_excite", "layer2_block1_project_bn",
                   "head_conv", "head_pool", "head_dropout", "classifier"]:
    assert expected in names
  assert "layer1_block1_expand_conv" not in names  # expand ratio 1
  assert "layer2_block1_add" not in names  # stride 2, width change
  assert [l.name for l in child.build_child(
      SMALL, input_shape=(8, 8, 3)).layers] == names  # deterministic
  bns = [l for l in model.layers
         if isinstance(l, keras.layers.BatchNormalization)]
  assert bns and all(l.momentum == 0.9 for l in bns)
  act = model.get_layer("layer2_block1_dw_act").get_config()["activation"]
  assert keras.activations.get(act) is keras.activations.get("swish")
  other = child.build_child(SMALL, input_shape=(8, 8, 3), bn_momentum=0.99,
                            dropout=0.0)
  assert all(l.momentum == 0.99 for l in other.layers
             if isinstance(l, keras.layers.BatchNormalization))
  assert "head_dropout" not in [l.name for l in other.layers]


def test_missing_layer_keys_take_defaults():
  config = {"layers": [{}, {"filters": 48, "stride": 2}]}
  blocks = child.blocks_from_config(config)
  d = child.LAYER_DEFAULTS
  assert blocks[0] == BlockArgs(
      kernel_size=d["kernel_size"], num_repeat=d["repeats"],
      input_filters=child.GLOBAL_DEFAULTS["stem_filters"],
      output_filters=child.GLOBAL_DEFAULTS["stem_filters"],
      expand_ratio=d["expand_ratio"], strides=(1, 1), se_ratio=0.0,
      activation="relu")
  assert blocks[1].input_filters == blocks[0].output_filters
  assert blocks[1].strides == (2, 2) and blocks[1].output_filters == 48
  # Builder arguments override the config, which overrides the defaults.
  assert child.blocks_from_config(
      dict(config, stem_filters=24), stem_filters=16)[0].input_filters == 16
  assert child.config_from_blocks(
      blocks, stem_stride=1)["layers"][1]["filters"] == 48
  assert child.blocks_from_config(child.config_from_blocks(blocks)) == blocks


def test_mnasnet_a1_preset_matches_the_paper(fresh_session):
  p = child.preset("mnasnet-a1")
  assert p["input_shape"] == (224, 224, 3) and p["num_classes"] == 1000
  assert [b.encode() for b in child.blocks_from_config(
      p["config"])] == MNASNET_A1
  model = child.build_child(**p)
  trainable = child.count_params(model, trainable_only=True)
  # Published: 3.9M parameters, 312M multiply-adds (Tan et al. 2018,
  # Table 1). The published count is of trainable weights; BN moving
  # statistics add 33,488 non-trainable ones.
  assert abs(trainable - 3.9e6) / 3.9e6 < 0.01
  assert abs(child.count_flops(model) - 312e6) / 312e6 < 0.01
  assert child.estimate_cost(p["config"], p["input_shape"], 1000)[
      "trainable_params"] == trainable
  names = [l.name for l in model.layers]
  # The first layer is MnasNet's SepConv (expand ratio 1: no expansion
  # conv; "noskip", see test_noskip_is_honoured); layer 2's second block has
  # a residual.
  assert "layer1_block1_expand_conv" not in names
  assert "layer1_block1_add" not in names and "layer2_block2_add" in names
  assert model.get_layer("stem_conv").strides == (2, 2)
  cifar = child.build_child(**child.preset("cifar-default"))
  assert cifar.output_shape == (None, 10)
  assert cifar.get_layer("stem_conv").strides == (1, 1)
  with pytest.raises(GraphNasError, match="unknown preset"):
    child.preset("mnasnet-z9")


def test_noskip_is_honoured():
  config = {"stem_filters": 8, "layers": [
      {"filters": 8, "repeats": 2, "expand_ratio": 1, "skip": False}]}
  names = [l.name for l in child.build_child(config).layers]
  assert not any(n.endswith("_add") for n in names)
  config["layers"][0]["skip"] = True
  names = [l.name for l in child.build_child(config).layers]
  assert "layer1_block1_add" in names and "layer1_block2_add" in names


@pytest.mark.parametrize("config, match", [
    ({"layers": [{"kernel_size": 4}]}, r"layer 1: 'kernel_size' must be odd"),
    ({"layers": [{}, {"activation": "gelu"}]}, r"layer 2: 'activation'"),
    ({"layers": [{"filters": 0}]}, r"layer 1: 'filters' must be in"),
    ({"layers": [{"filters": 2.5}]}, r"layer 1: 'filters' must be an int"),
    ({"layers": [{"repeats": 0}]}, r"layer 1: 'repeats'"),
    ({"layers": [{"expand_ratio": True}]}, r"layer 1: 'expand_ratio'"),
    ({"layers": [{"se_ratio": 1.5}]}, r"layer 1: 'se_ratio'"),
    ({"layers": [{"se_ratio": "0.25"}]}, r"layer 1: 'se_ratio'"),
    ({"layers": [{"stride": 0}]}, r"layer 1: 'stride'"),
    ({"layers": [{"skip": "yes"}]}, r"layer 1: 'skip'"),
    ({"layers": [{"kernal_size": 3}]}, r"layer 1: unknown key 'kernal_size'"),
    ({"layers": [{}, {}, 7]}, r"layer 3: must be a dict"),
    ({"layers": []}, r"'layers' must be a non-empty list"),
    ({}, r"'layers' must be a non-empty list"),
    ([{"kernel_size": 3}], r"must be a dict"),
    ({"stem_filters": 0, "layers": [{}]}, r"config key 'stem_filters'"),
    ({"head_filters": "big", "layers": [{}]}, r"config key 'head_filters'"),
])
def test_bad_configs_raise_graph_nas_error(config, match):
  with pytest.raises(GraphNasError, match=match):
    child.build_child(config)
  with pytest.raises(GraphNasError, match=match):
    child.estimate_cost(config)


@pytest.mark.parametrize("kwargs, match", [
    ({"input_shape": (32, 32)}, "input_shape"),
    ({"input_shape": (0, 32, 3)}, "input_shape"),
    ({"num_classes": 0}, "num_classes"),
    ({"bn_momentum": 1.0}, "bn_momentum"),
    ({"dropout": -0.1}, "dropout"),
    ({"stem_stride": 0}, "stem_stride"),
])
def test_bad_builder_arguments_raise_graph_nas_error(kwargs, match):
  with pytest.raises(GraphNasError, match=match):
    child.build_child({"layers": [{}]}, **kwargs)


def test_save_and_reload_give_identical_outputs(tmp_path, fresh_session):
  model = child.build_child(SMALL, input_shape=(8, 8, 3), num_classes=10)
  # Non-trivial BN statistics and weights: one training step.
  model.compile(optimizer="sgd",
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
  model.fit(x, np.arange(4) % 10, epochs=1, verbose=0)
  paths = child.save_child(model, SMALL, str(tmp_path / "run1"))
  assert os.path.basename(paths["model"]) == "model.keras"
  reloaded = keras.models.load_model(paths["model"])
  out = keras.ops.convert_to_numpy(model(x, training=False))
  np.testing.assert_array_equal(
      out, keras.ops.convert_to_numpy(reloaded(x, training=False)))
  with open(paths["architecture"], encoding="utf-8") as f:
    arch = json.load(f)
  assert arch["config"] == SMALL
  assert arch["block_strings"] == [
      b.encode() for b in child.blocks_from_config(SMALL)]
  assert arch["params"] == child.count_params(model)
  assert arch["flops"] == child.count_flops(model)
  assert arch["input_shape"] == [8, 8, 3] and arch["num_classes"] == 10
  again, arch2 = child.load_child(str(tmp_path / "run1"))
  assert arch2 == arch
  np.testing.assert_array_equal(
      out, keras.ops.convert_to_numpy(again(x, training=False)))
