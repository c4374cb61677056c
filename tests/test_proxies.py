"""Zero-cost proxies of image children (graph_nas.child.proxies) and the
image evaluator's cheap scores (screening a CIFAR-10 search with them)."""

import math
import pickle

import keras
import numpy as np
import pytest

from graph_nas import api, child, space as space_lib
from graph_nas.child import proxies
from graph_nas.child.settings import TrainSettings
from graph_nas.search import evaluators
from graph_nas.search.store import TrialStore, config_key

# A tiny image space: one or two MBConv layers, narrow (children build and
# score in a fraction of a second).
TINY_SPACE = """
name: "tiny_image"
task: "image_classification"
task_params { key: "dataset" value: "cifar10" }
task_params { key: "image_size" value: "16" }
start: "layer1"
defaults { key: "stem_filters" value { int_value: 8 } }
defaults { key: "stem_stride" value { int_value: 1 } }
defaults { key: "head_filters" value { int_value: 16 } }
vertices {
  name: "layer1"
  actions { name: "append" target: "layer1_stride" key: "layers" op: APPEND }
}
vertices {
  name: "layer1_stride"
  actions { name: "stride" target: "layer1_filters" key: "layers[-1].stride" value { int_value: 2 } }
}
vertices {
  name: "layer1_filters"
  actions { name: "filters" target: "layer1_expand" key: "layers[-1].filters" int_values: [8, 16] }
}
vertices {
  name: "layer1_expand"
  actions { name: "expand" target: "layer1_activation" key: "layers[-1].expand_ratio" int_values: [1, 3] }
}
vertices {
  name: "layer1_activation"
  actions { name: "activation" target: "layer1_more" key: "layers[-1].activation" string_values: ["relu", "swish"] }
}
vertices {
  name: "layer1_more"
  actions { name: "continue" target: "layer2" }
  actions { name: "stop" target: "end" }
}
vertices {
  name: "layer2"
  actions { name: "append" target: "layer2_filters" key: "layers" op: APPEND }
}
vertices {
  name: "layer2_filters"
  actions { name: "filters" target: "layer2_se" key: "layers[-1].filters" int_values: [16, 24] }
}
vertices {
  name: "layer2_se"
  actions { name: "se" target: "end" key: "layers[-1].se_ratio" float_values: [0.0, 0.25] }
}
vertices { name: "end" }
"""
SHAPE = (16, 16, 3)
PREPROCESSING = ((125.0, 122.0, 113.0), (63.0, 62.0, 66.0))


def _config(filters=8, expand=3, activation="relu", second=None):
  layers = [{"stride": 2, "filters": filters, "expand_ratio": expand,
             "activation": activation}]
  if second:
    layers.append({"filters": second, "se_ratio": 0.25})
  return {"stem_filters": 8, "stem_stride": 1, "head_filters": 16,
          "layers": layers}


def _build(config, seed=0):
  keras.utils.set_random_seed(seed)
  return child.build_child(config, SHAPE, 10, preprocessing=PREPROCESSING)


def _images(n=16, seed=0):
  return np.random.default_rng(seed).uniform(0, 255, (n,) + SHAPE).astype(
      np.float32)


def _weights(model):
  return [w.numpy().copy() for w in model.weights]


# ------------------------------------------------------------ the proxies
@pytest.mark.parametrize("activation", ["relu", "swish"])
def test_proxies_are_finite_seeded_and_leave_the_model_unchanged(activation):
  config = _config(activation=activation, second=16)
  model = _build(config)
  before = _weights(model)
  images = _images()
  s, n = proxies.synflow(model), proxies.naswot(model, images)
  assert math.isfinite(s) and math.isfinite(n)
  # Neither changes a weight (naswot runs BN in training mode: its moving
  # statistics are kept as they were).
  for a, b in zip(before, _weights(model)):
    np.testing.assert_array_equal(a, b)
  # Deterministic for a seed: the same again, and on a rebuilt child.
  assert proxies.synflow(model) == s
  assert proxies.naswot(model, images) == n
  again = _build(config)
  assert proxies.synflow(again) == s and proxies.naswot(again, images) == n
  # Another seed: other weights, another score.
  other = _build(config, seed=1)
  assert proxies.synflow(other) != s and proxies.naswot(other, images) != n


def test_synflow_matches_its_definition_on_a_small_network():
  # A ReLU MLP without BN: R = sum of logits with |w| and all-ones input,
  # score = sum |w * dR/dw| over the kernels, computed by hand.
  keras.utils.set_random_seed(3)
  inputs = keras.Input((4,))
  h = keras.layers.Dense(5, use_bias=False)(inputs)
  h = keras.layers.Activation("relu")(h)
  out = keras.layers.Dense(2, use_bias=False)(h)
  model = keras.Model(inputs, out)
  w1, w2 = (np.abs(np.array(w, np.float64)) for w in model.get_weights())
  x = np.ones(4)
  # R = 1^T W2^T W1^T x (all positive: ReLU is the identity here).
  g1 = np.outer(x, w2.sum(axis=1))  # dR/dW1[i, j] = x_i * sum_k W2[j, k]
  g2 = np.outer(w1.T @ x, np.ones(2))  # dR/dW2[j, k] = h_j
  expected = (w1 * g1).sum() + (w2 * g2).sum()
  assert proxies.synflow(model) == pytest.approx(math.log(expected),
                                                 rel=1e-6)


def test_synflow_bypasses_batch_norm_and_the_input_normalisation():
  # BN with any statistics and the model's own Normalization change
  # nothing: synflow sees the all-ones image after normalisation.
  config = _config(second=16)
  model = _build(config)
  base = proxies.synflow(model)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.moving_mean.assign(np.full(layer.moving_mean.shape, 5.0))
      layer.moving_variance.assign(np.full(layer.moving_variance.shape, 9.0))
  assert proxies.synflow(model) == base
  keras.utils.set_random_seed(0)
  bare = child.build_child(config, SHAPE, 10)  # no Normalization layer
  assert proxies.synflow(bare) == pytest.approx(base, rel=1e-9)


def test_synflow_falls_back_to_float64_when_float32_overflows():
  inputs = keras.Input((8,))
  h = inputs
  for _ in range(4):
    h = keras.layers.Dense(8, use_bias=False, activation="relu")(h)
  model = keras.Model(inputs, h)
  for w in model.weights:
    w.assign(np.full(w.shape, 1e12, np.float32))
  # R = 8 * (8e12)^4 ~ 3e53 > float32's 3.4e38: computed in float64.
  expected = math.log(4 * 8 ** 5 * 1e48)  # 4 kernels, each 8^5 e48
  assert proxies.synflow(model) == pytest.approx(expected, rel=1e-9)
  small = _build(_config())
  twin = proxies._float64_twin(small)  # pylint: disable=protected-access
  assert {l.dtype_policy.name for l in twin.layers[1:]} == {"float64"}
  assert math.log(proxies._synflow_once(twin, "float64")) == pytest.approx(  # pylint: disable=protected-access
      proxies.synflow(small), rel=1e-6)


def test_synflow_and_size_grow_with_width():
  narrow, wide = _config(filters=8), _config(filters=16)
  n, w = _build(narrow), _build(wide)
  assert proxies.params(w) > proxies.params(n)
  assert proxies.flops(wide, SHAPE) > proxies.flops(narrow, SHAPE)
  assert proxies.synflow(w) > proxies.synflow(n)
  # The reference counts are the child package's own.
  for config, model in ((narrow, n), (wide, w)):
    assert proxies.params(model) == child.count_params(model)
    assert proxies.flops(config, SHAPE) == child.count_flops(model)
    assert proxies.params_of_config(config, SHAPE) == child.count_params(
        model)


def test_naswot_is_lowest_when_the_codes_do_not_tell_images_apart():
  model = _build(_config(second=16))
  diverse = proxies.naswot(model, _images(16))
  # The same image 16 times: every code identical, K of rank 1.
  same = proxies.naswot(model, np.repeat(_images(1), 16, axis=0))
  assert same == -math.inf < diverse
  # A net whose ReLUs all see a constant (its stem's kernel zero: every
  # later activation is the same for every image) scores as low.
  dull = _build(_config(second=16))
  stem = dull.get_layer("stem_conv")
  stem.kernel.assign(np.zeros(stem.kernel.shape, np.float32))
  assert proxies.naswot(dull, _images(16)) == -math.inf


def test_naswot_reads_the_relu_family_activation_layers():
  model = _build(_config(activation="swish", second=16))
  names = [l.name for l in proxies.relu_layers(model)]
  assert "stem_act" in names and "head_act" in names
  assert "layer1_block1_expand_act" in names  # swish gates at 0 too
  # No such layer: one clear error.
  inputs = keras.Input((4,))
  bare = keras.Model(inputs, keras.layers.Dense(2)(inputs))
  with pytest.raises(ValueError, match="no ReLU-family"):
    proxies.naswot(bare, np.ones((4, 4), np.float32))


# ------------------------------------------------- the evaluator's scores
def _settings(cifar):
  return TrainSettings(data_dir=cifar.data_dir, image_size=16, steps=2,
                       batch_size=16, train_examples=64, eval_examples=32,
                       progress_every_s=0)


def test_the_image_evaluator_offers_cheap_scores(cifar):
  sp = space_lib.loads(TINY_SPACE)
  evaluator = evaluators.evaluator_for(sp, _settings(cifar))
  assert evaluator.cheap_score_names == ("synflow", "naswot", "params",
                                         "flops")
  rng = np.random.default_rng(0)
  configs = [sp.decode(sp.sample_random(rng).actions) for _ in range(3)]
  bad = _config(filters=0)
  scores = {}
  for name in evaluator.cheap_score_names:
    got = evaluator.cheap_scores(configs + [bad], name)
    assert len(got) == 4 and all(math.isfinite(v) for v in got[:3]), got
    assert math.isnan(got[3])  # a child that does not build: no score
    scores[name] = got[:3]
  # No prepare(): the data was read for NASWOT's batch, once, and kept.
  images = evaluator._proxy_cache  # pylint: disable=protected-access
  assert tuple(images.shape) == (evaluator.proxy_batch,) + SHAPE
  # The sizes are the built child's; the proxies are seeded (the same
  # scores again), and a pickled evaluator (a worker's copy, or the
  # driver's for the process executor) scores the same without the cache.
  for i, config in enumerate(configs):
    model = evaluator.trainer.build(config, evaluator.proxy_seed)
    assert scores["params"][i] == child.count_params(model)
    assert scores["flops"][i] == child.count_flops(model)
    assert scores["synflow"][i] == proxies.synflow(model)
  copy = pickle.loads(pickle.dumps(evaluator))
  assert copy._proxy_cache is None  # pylint: disable=protected-access
  for name in ("synflow", "naswot"):
    assert copy.cheap_scores(configs, name) == scores[name]
  with pytest.raises(Exception, match="unknown cheap score 'zen'"):
    evaluator.cheap_scores(configs, "zen")


def test_a_search_screened_by_synflow_records_its_candidates(tmp_path,
                                                             cifar):
  sp = space_lib.loads(TINY_SPACE)
  evaluator = evaluators.evaluator_for(sp, _settings(cifar))
  out = api.search(sp, evaluator, str(tmp_path / "run"), max_trials=2,
                   screen="synflow", candidates_per_trial=3,
                   screen_explore=0.0, tensorboard=False, verbose=False)
  with TrialStore(out["store"]) as store:
    trials, screened = store.trials(), store.screened()
  assert len(trials) == 2
  assert all(t["status"] == "ok" for t in trials)
  chosen = [r for r in screened if r["chosen"]]
  assert {r["scorer"] for r in screened} == {"synflow"}
  assert len(screened) > len(chosen) >= 2
  # The chosen candidates are the trials; each screening (no exploration)
  # chose its best-scored candidates, scored by the evaluator's synflow.
  assert sorted(config_key(r["config"]) for r in chosen) == sorted(
      config_key(t["config"]) for t in trials)
  by_screen = {}
  for r in screened:
    by_screen.setdefault(r["screen_key"], []).append(r)
  for rows in by_screen.values():
    picked = [r["score"] for r in rows if r["chosen"]]
    left = [r["score"] for r in rows if not r["chosen"] and
            r["score"] is not None]
    assert None not in picked and min(picked) >= max(left, default=-1e9)
  for r in screened[:4]:
    if r["score"] is not None:
      assert r["score"] == evaluator.cheap_scores([r["config"]],
                                                  "synflow")[0]
