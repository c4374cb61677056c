"""TensorBoard HParams: readable decision names, domains from the space,
one session per trial that TensorBoard's HParams plugin reads back."""

import json
import os
import random
import warnings

import numpy as np
import pytest

from graph_nas import search, space as space_lib
from graph_nas.report import hparams
from graph_nas.errors import GraphNasError, SpaceWarning
from graph_nas.search.store import TrialStore
from tests.conftest import PROTOS
from tests.test_search import _toy_search


def _domain_holds(domain, value):
  if domain is None:
    return True
  from tensorboard.plugins.hparams import api as hp
  if isinstance(domain, hp.Discrete):
    if isinstance(value, (bool, str)):
      return value in domain.values
    return float(value) in [float(v) for v in domain.values]
  return domain.min_value <= value <= domain.max_value


def _check_domains(space, walks=60, seed=0):
  """Every decoded value lies in its name's domain; a name left out is
  the same in every architecture seen."""
  names = hparams.decisions(space)
  left_out = {}
  rng = np.random.default_rng(seed)
  for _ in range(walks):
    try:
      config = space.decode(space.sample_random(rng).actions)
    except GraphNasError:
      continue
    for name, value in hparams.flatten(config).items():
      if name in names:
        assert _domain_holds(names[name], value), (name, value, names[name])
      else:
        left_out.setdefault(name, set()).add((type(value), value))
  for name, seen in left_out.items():
    assert len(seen) == 1, (name, seen)
  return names


def test_flatten_gives_readable_names():
  config = {"stem_filters": 16, "layers": [
      {"kernel_size": 3, "filters": 24}, {"kernel_size": 5, "filters": 32}],
            "opt": {"name": "sgd", "lrs": [0.1, 0.01]}}
  assert hparams.flatten(config) == {
      "stem_filters": 16, "num_layers": 2, "layer1/kernel_size": 3,
      "layer1/filters": 24, "layer2/kernel_size": 5, "layer2/filters": 32,
      "opt/name": "sgd", "opt/num_lrs": 2, "opt/lr1": 0.1, "opt/lr2": 0.01}
  assert hparams.flatten({"optimizer": "adam", "p1": 3}) == {
      "optimizer": "adam", "p1": 3}


def test_decisions_of_the_cifar_cpu_space():
  from tensorboard.plugins.hparams import api as hp
  names = _check_domains(space_lib.load(str(PROTOS / "cifar_cpu.textproto")))
  assert names["num_layers"].values == [1, 2, 3, 4]
  assert names["layer1/kernel_size"].values == [3, 5]
  assert names["layer2/filters"].values == [24, 32, 48]
  assert names["layer4/se_ratio"].values == [0.0, 0.25]
  assert names["layer3/activation"].values == ["relu", "swish"]
  assert isinstance(names["layer1/expand_ratio"], hp.Discrete)
  # Not decisions: the same in every architecture.
  for fixed in ("stem_filters", "head_filters", "layer1/stride",
                "layer2/stride"):
    assert fixed not in names
  assert len(names) == 1 + 4 * 6


def test_decisions_of_the_toy_spaces():
  from tensorboard.plugins.hparams import api as hp
  names = _check_domains(space_lib.load(
      str(PROTOS / "select_optimizer_b2.textproto")))
  assert list(names) == ["optimizer", "p1", "p2", "p3", "p4"]
  assert names["optimizer"].values == ["adam", "sgd"]
  assert isinstance(names["p1"], hp.IntInterval)  # 100 values: a range
  stack = space_lib.load(str(PROTOS / "stack_layers.textproto"))
  assert _check_domains(stack) == {"num_layers": None}  # ADD: any number
  # A linear twin decodes through its graph: the same names.
  assert list(hparams.decisions(stack.linear_twin())) == ["num_layers"]


@pytest.mark.parametrize("name", sorted(
    p.stem for p in PROTOS.glob("*.textproto")))
def test_every_shipped_space_has_domains_that_hold(name):
  space = space_lib.load(str(PROTOS / f"{name}.textproto"))
  names = _check_domains(space)
  assert names


def test_domains_hold_on_random_spaces():
  from tests.test_space_fuzz import graph_case, small_graph
  from google.protobuf import text_format
  loaded = 0
  for seed in range(300):
    rnd = random.Random(seed)
    text = (text_format.MessageToString(small_graph(rnd)) if seed % 2
            else graph_case(seed))
    try:
      with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpaceWarning)
        space = space_lib.loads(text, "fuzz.textproto")
    except GraphNasError:
      continue
    loaded += 1
    _check_domains(space, walks=30, seed=seed)
  assert loaded > 100


def test_a_space_too_large_to_walk_falls_back_to_names_without_domains(
    monkeypatch):
  space = space_lib.load(str(PROTOS / "cifar_cpu.textproto"))
  monkeypatch.setattr(hparams, "MAX_STATES", 10)
  names = _check_domains(space)
  assert "layer1/kernel_size" in names and "num_layers" in names
  assert set(names.values()) == {None}


# ------------------------------------------------------ the event files
def _events(path):
  import tensorflow as tf
  out = []
  for name in sorted(os.listdir(path)):
    if name.startswith("events.out.tfevents"):
      out += list(tf.compat.v1.train.summary_iterator(
          os.path.join(path, name)))
  return out


def _session(run_dir):
  """(hparams, {metric tag: value}) of one trial's run folder."""
  import tensorflow as tf
  from tensorboard.plugins.hparams import metadata
  hp_values, metrics = None, {}
  for event in _events(run_dir):
    for value in event.summary.value:
      plugin = value.metadata.plugin_data
      if plugin.plugin_name == metadata.PLUGIN_NAME:
        assert value.tag == metadata.SESSION_START_INFO_TAG
        info = metadata.parse_session_start_info_plugin_data(plugin.content)
        hp_values = {k: v.WhichOneof("kind") and getattr(
            v, v.WhichOneof("kind")) for k, v in info.hparams.items()}
      else:
        metrics[value.tag] = float(tf.make_ndarray(value.tensor))
  return hp_values, metrics


class _CostedToy:
  """A toy reward with the metrics an image trial reports; trial 4 fails."""

  def evaluate(self, config, trial_id, seed):
    del seed
    if trial_id == 4:
      return search.EvalResult("failed", reason="loss is NaN")
    return search.EvalResult("ok", config["p1"] / 100, {
        "val_accuracy": config["p2"] / 100, "flops": 1e6 * config["p3"],
        "params": 1000 + config["p4"]})


def test_a_toy_search_writes_one_hparams_session_per_trial(tmp_path):
  from tensorboard.plugins.hparams import metadata
  job = _toy_search(tmp_path, max_trials=9, evaluator=_CostedToy())
  job.run()
  job.close()
  with TrialStore(str(tmp_path / "trials.sqlite")) as store:
    rows = store.trials()
  assert len(rows) == 9
  tb = tmp_path / "tensorboard"
  # The experiment, once, at the top: the decisions with their domains and
  # the metrics (multiply-adds named as such).
  experiments = [
      metadata.parse_experiment_plugin_data(v.metadata.plugin_data.content)
      for e in _events(tb) for v in e.summary.value
      if v.tag == metadata.EXPERIMENT_TAG]
  assert len(experiments) == 1
  exp = experiments[0]
  assert [h.name for h in exp.hparam_infos] == ["optimizer", "p1", "p2",
                                                "p3", "p4"]
  assert list(exp.hparam_infos[0].domain_discrete.values[i].string_value
              for i in range(2)) == ["adam", "sgd"]
  metric_names = {m.name.tag: m.display_name for m in exp.metric_infos}
  assert metric_names["hparams/flops"] == "multiply-adds"
  assert set(metric_names) == {"hparams/reward", "hparams/val_accuracy",
                               "hparams/flops", "hparams/params",
                               "hparams/seconds", "hparams/failed",
                               "hparams/rung", "hparams/budget_fraction"}
  # One session per trial, each in its own run folder.
  assert sorted(os.listdir(tb / "trials")) == [
      f"trial_{i:06d}" for i in range(9)]
  for row in rows:
    hp_values, metrics = _session(tb / "trials" / f"trial_{row['trial_id']:06d}")
    config = row["config"]
    assert hp_values == {"optimizer": config["optimizer"],
                         **{k: float(config[k]) for k in
                            ("p1", "p2", "p3", "p4")}}
    assert metrics["hparams/seconds"] == pytest.approx(row["seconds"],
                                                       rel=1e-5, abs=1e-6)
    if row["status"] == "failed":
      assert row["trial_id"] == 4
      assert metrics["hparams/failed"] == 1.0
      assert "hparams/reward" not in metrics
      continue
    assert metrics["hparams/failed"] == 0.0
    assert metrics["hparams/reward"] == pytest.approx(row["reward"])
    assert metrics["hparams/val_accuracy"] == pytest.approx(
        config["p2"] / 100)
    assert metrics["hparams/flops"] == pytest.approx(1e6 * config["p3"])
    assert metrics["hparams/params"] == 1000 + config["p4"]


def test_tensorboard_hparams_plugin_lists_every_trial(tmp_path):
  """What the dashboard's table shows: TensorBoard's own HParams plugin
  (its HTTP routes) reads the experiment and one session group per trial
  with its decisions and metrics."""
  from tensorboard.backend.event_processing import data_provider
  from tensorboard.backend.event_processing import plugin_event_multiplexer
  from tensorboard.plugins import base_plugin
  from tensorboard.plugins.hparams import hparams_plugin
  from werkzeug import test as wtest, wrappers
  job = _toy_search(tmp_path, max_trials=6, evaluator=_CostedToy())
  job.run()
  job.close()
  logdir = str(tmp_path / "tensorboard")
  mux = plugin_event_multiplexer.EventMultiplexer()
  mux.AddRunsFromDirectory(logdir)
  mux.Reload()
  plugin = hparams_plugin.HParamsPlugin(base_plugin.TBContext(
      logdir=logdir, multiplexer=mux,
      data_provider=data_provider.MultiplexerDataProvider(mux, logdir)))
  apps = plugin.get_plugin_apps()

  def post(route, body):
    r = wtest.Client(apps[route], wrappers.Response).post(
        "/", data=json.dumps(body))
    assert r.status_code == 200, r.get_data()
    return json.loads(r.get_data())

  exp = post("/experiment", {"experimentName": ""})
  assert {h["name"] for h in exp["hparamInfos"]} == {
      "optimizer", "p1", "p2", "p3", "p4"}
  groups = post("/session_groups", {
      "startIndex": 0, "sliceSize": 100,
      "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS",
                          "STATUS_FAILURE", "STATUS_RUNNING"],
      "colParams": [{"metric": {"tag": "hparams/reward"},
                     "order": "ORDER_DESC"}]})["sessionGroups"]
  assert sorted(g["name"] for g in groups) == [
      f"trial_{i:06d}" for i in range(6)]
  with TrialStore(str(tmp_path / "trials.sqlite")) as store:
    rows = {f"trial_{r['trial_id']:06d}": r for r in store.trials()}
  for g in groups:
    row = rows[g["name"]]
    assert g["hparams"]["optimizer"] == row["config"]["optimizer"]
    assert g["hparams"]["p1"] == row["config"]["p1"]
    got = {m["name"]["tag"]: m["value"] for m in g["metricValues"]}
    if row["status"] == "ok":
      assert got["hparams/reward"] == pytest.approx(row["reward"])
      assert got["hparams/flops"] == pytest.approx(
          1e6 * row["config"]["p3"])
