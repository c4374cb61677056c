"""Every setting declared once (graph_nas.search.settings); every front door
derives its flags, keyword arguments, defaults and error wording from it."""

import dataclasses
import json
import subprocess
import sys

import pytest

from graph_nas import api
from graph_nas.search import settings as settings_lib
from graph_nas.errors import GraphNasError, SettingError
from graph_nas.search.settings import (AlgorithmSettings, ExecutorSettings, SearchSettings)
from tests.conftest import ROOT

CLASSES = settings_lib.SETTINGS_CLASSES
_DUMP = ("import json, sys; import graph_nas.{module}; from absl import "
         "flags; print('FLAGS ' + json.dumps({{n: [flags.FLAGS[n].default, "
         "flags.FLAGS[n].help] for n in flags.FLAGS}}))")


def _front_door_flags(module):
  """{flag: [default, help]} of a front end's flags (its own process: the
  launcher and the experiment both define flags at import)."""
  proc = subprocess.run([sys.executable, "-c", _DUMP.format(module=module)],
                        capture_output=True, text=True, cwd=ROOT,
                        timeout=300, check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("FLAGS ")]
  assert lines, proc.stderr[-2000:]
  return json.loads(lines[0][len("FLAGS "):])


@pytest.fixture(scope="module")
def launcher_flags():
  return _front_door_flags("launch")


@pytest.fixture(scope="module")
def experiment_flags():
  return _front_door_flags("experiment")


def _declared():
  """(class, field name, flag name, default, Option) of every setting."""
  for cls in CLASSES:
    for f in dataclasses.fields(cls):
      opt = settings_lib.options(cls).get(f.name)
      if opt is not None:
        yield cls, f.name, opt.flag or f.name, f.default, opt


def test_every_declared_setting_has_help_and_a_default_of_its_kind():
  seen = set()
  for cls, name, flag, default, opt in _declared():
    assert flag not in seen, f"{flag} declared twice"
    seen.add(flag)
    assert len(opt.help) > 10 and opt.help.endswith("."), (cls, name)
    assert default is None or isinstance(default, opt.kind), (cls, name)
    if opt.choices:
      assert default in opt.choices, (cls, name)
    cls().check()  # the defaults pass their own bounds


def test_the_launcher_and_api_search_share_every_default(launcher_flags):
  """The same setting has the same default through the launcher's flags
  and graph_nas.api.search's keyword arguments (which take the
  declaration's), and the launcher's help is the declaration's."""
  chosen = settings_lib.split_overrides({})
  for cls, name, flag, default, opt in _declared():
    assert getattr(chosen[cls], name) == default
    if not opt.flagged:
      assert flag not in launcher_flags, flag
      continue
    flag_default, flag_help = launcher_flags[flag]
    assert flag_default == default, flag
    assert flag_help.endswith(opt.help), flag  # (enums: "<a|b>: " first)
  # api.search documents every setting with its default.
  for cls, name, _, default, _ in _declared():
    assert f"{name}={default!r}: " in api.search.__doc__, name


def test_the_experiment_shares_the_launchers_defaults_but_the_papers(
    experiment_flags, launcher_flags):
  declared = {flag for _, _, flag, _, _ in _declared()}
  shared = sorted(set(experiment_flags) & set(launcher_flags) & declared)
  assert {"walks_per_update", "seed", "learning_rate", "entropy_weight",
          "entropy_mode", "value_features", "queue_size", "pg_weight",
          "algorithm"} <= set(shared)
  differ = {n for n in shared
            if experiment_flags[n][0] != launcher_flags[n][0]}
  # The experiment reproduces the paper: REINFORCE, the paper's learning
  # rate for the task (its help says so), and the paper's controller: no
  # repeat refusal, raw advantages (experiment.PAPER_CONTROLLER).
  assert differ == {"algorithm", "learning_rate", "no_repeats",
                    "normalize_advantages"}
  assert experiment_flags["no_repeats"][0] is False
  assert experiment_flags["normalize_advantages"][0] is False
  assert experiment_flags["algorithm"][0] == "reinforce"
  assert "the paper's for the task" in experiment_flags["learning_rate"][1]


def test_per_algorithm_defaults_are_resolved_alike():
  assert AlgorithmSettings().entropy_weight is None
  assert AlgorithmSettings(algorithm="reinforce").resolved() \
      .entropy_weight == 0.1
  assert AlgorithmSettings(algorithm="pqt").resolved().entropy_weight == 0.8
  assert AlgorithmSettings(entropy_weight=0.3).resolved() \
      .entropy_weight == 0.3
  from graph_nas.search import algorithms
  from graph_nas.space import load
  space = load(str(ROOT / "protos" / "stack_layers.textproto"))
  for name, weight in (("reinforce", 0.1), ("pqt", 0.8)):
    kwargs = AlgorithmSettings(algorithm=name, hidden_dim=4,
                               embedding_dim=4).algorithm_kwargs()
    assert kwargs["entropy_weight"] == weight
    algo = algorithms.make_algorithm(name, space, **kwargs)
    assert algo.entropy_weight == weight
    # The class's own default is the declared one too.
    assert algorithms.ALGORITHMS[name](space, hidden_dim=4,
                                       embedding_dim=4).entropy_weight == \
        weight
  assert "queue_size" not in AlgorithmSettings(
      algorithm="reinforce").algorithm_kwargs()
  assert AlgorithmSettings(algorithm="random").algorithm_kwargs() == {}


def test_bounds_choices_and_unknown_names_are_setting_errors():
  cases = [(SearchSettings(max_trials=0), "max_trials=0: must be >= 1"),
           (SearchSettings(update_policy="fast"),
            "update_policy='fast': must be 'sync' or 'async'"),
           (SearchSettings(failure_reward=float("nan")),
            "failure_reward=nan: must be a finite number"),
           (AlgorithmSettings(algorithm="bayes"),
            "algorithm='bayes': must be 'pqt', 'reinforce', 'random' or "
            "'evolution'"),
           (AlgorithmSettings(value_features=1),
            "value_features=1: must be 0 (the paper's controller) or >= 2"),
           (ExecutorSettings(workers=2),
            "workers=2: applies to executor='process' or 'ray'; the "
            "in-process executor runs one trial at a time")]
  for obj, text in cases:
    with pytest.raises(SettingError) as err:
      obj.check()
    assert str(err.value) == text
  with pytest.raises(SettingError, match=r"^max_trails=3: unknown setting "
                     r"\(known: .*max_trials"):
    settings_lib.split_overrides({"max_trails": 3})
  with pytest.raises(GraphNasError, match="not a setting of SearchSettings"):
    SearchSettings().replace(learning_rate=1.0)


def test_error_wording_derives_from_the_declarations():
  naming = settings_lib.flag_naming(extra={"out_dir": "out_dir"})
  assert naming.name("address") == "--ray_address"
  assert naming.name("retries") == "--worker_retries"
  assert naming.name("max_trials") == "--max_trials"
  assert naming.name("out_dir") == "--out_dir"
  error = SettingError("retries", -1, "must be >= 0").named(naming)
  assert str(error) == "--worker_retries=-1: must be >= 0"


def test_the_run_identity_is_the_declared_identity_settings(tmp_path):
  assert settings_lib.identity_fields(SearchSettings) == (
      "walks_per_update", "seed", "rungs", "eta", "screen",
      "candidates_per_trial")
  assert settings_lib.identity_fields(AlgorithmSettings) == ("algorithm",)
  from graph_nas.search import tasks
  from graph_nas.search.evaluators import FunctionEvaluator
  from graph_nas.search.store import TrialStore
  from graph_nas.search import assemble
  from graph_nas.space import load
  space = load(str(ROOT / "protos" / "stack_layers.textproto"))
  job = assemble.assemble(
      space, FunctionEvaluator(tasks.reward_fn_for(space)), str(tmp_path),
      search=SearchSettings(max_trials=2, walks_per_update=2, seed=3,
                            tensorboard=False),
      algorithm=AlgorithmSettings(algorithm="random"))
  assemble.run_search(job)
  with TrialStore(str(tmp_path / "trials.sqlite")) as store:
    identity = store.get_meta("identity")
    record = store.get_meta("run_info")
  assert {k: identity[k] for k in ("algorithm", "seed", "walks_per_update")} \
      == {"algorithm": "random", "seed": 3, "walks_per_update": 2}
  # The record holds every declared setting (resolved) beside the space.
  assert record["max_trials"] == 2 and record["entropy_mode"] == "sum"
  assert record["space"].endswith("stack_layers.textproto")


# ------------------------------------------- child training (one declaration)
from graph_nas import options as options_lib  # noqa: E402
from graph_nas.child.settings import (  # noqa: E402
    CHILD_SETTINGS_CLASSES, RetrainSettings, TrainSettings)

# The launcher's own default and help where the space decides.
_SPACE_DECIDES = {"dataset", "image_size"}


def test_child_training_flags_are_the_declarations(launcher_flags):
  """Every flagged child-training and retraining setting is one launcher
  flag with the declaration's default (None shown as 'none' by an enum)
  and help; two settings share a flag only where declared (the MnasNet
  exponents); an unflagged one has no flag."""
  by_flag = {}
  for cls in CHILD_SETTINGS_CLASSES:
    for name, opt in options_lib.options(cls).items():
      flag = opt.flag or name
      assert len(opt.help) > 10 and opt.help.endswith("."), name
      if not opt.flagged:
        assert flag not in launcher_flags, flag
        continue
      by_flag.setdefault(flag, []).append(name)
      default, text = launcher_flags[flag]
      if name in _SPACE_DECIDES:
        assert default is None and "the space's" in text, flag
        continue
      declared = options_lib.defaults(cls)[name]
      if opt.choices is not None and declared is None:
        declared = opt.none_flag
      assert default == declared, flag
      if by_flag[flag] == [name]:  # a shared flag's help: the first's
        assert text.endswith(opt.help), flag
  assert {f: n for f, n in by_flag.items() if len(n) > 1} == {
      "flops_exponent": ["reward_alpha", "reward_beta"]}
  # The one default of a child's budget: the paper's 20 epochs.
  assert launcher_flags["epochs"][0] == TrainSettings().epochs == 20.0


def test_the_budget_identity_is_the_declared_identity_settings():
  identity = TrainSettings(steps=5).budget_identity()
  assert list(identity) == [*options_lib.identity_fields(TrainSettings)]
  assert identity["epochs"] is None  # steps set the length
  for name in ("dataset", "train_examples", "learning_rate", "augment",
               "reward_beta", "model_kwargs"):
    assert name in identity
  for name in ("data_dir", "strategy", "progress_every_s", "deterministic"):
    assert name not in identity


def test_child_settings_bounds_are_checked_at_the_declaration():
  cases = [(TrainSettings(epochs=0), "epochs=0: must be > 0"),
           (TrainSettings(warmup_fraction=1.0),
            "warmup_fraction=1.0: must be < 1"),
           (TrainSettings(mixed_precision="fp8"), "mixed_precision='fp8': "
            "must be 'mixed_float16' or 'mixed_bfloat16' or None"),
           (TrainSettings(reward_alpha=0.5), "reward_alpha=0.5: must be <= 0"),
           (RetrainSettings(final_train_examples=-1),
            "final_train_examples=-1: must be >= 0")]
  for obj, text in cases:
    with pytest.raises(SettingError) as err:
      obj.check()
    assert str(err.value) == text
  with pytest.raises(SettingError, match="epoch=3: unknown training "
                     "setting"):
    TrainSettings().replace(epoch=3)


def test_the_retraining_and_the_space_decide_as_the_launcher_says():
  from graph_nas.search import evaluators
  from graph_nas.space import load
  space = load("cifar_cpu")
  search, final = evaluators.space_train_settings(
      space, {"epochs": 2, "train_examples": 5120, "learning_rate": 0.1},
      RetrainSettings(final_train_examples=0, final_augment=False))
  assert (search.dataset, search.epochs, search.learning_rate) == (
      "cifar10", 2, 0.1)
  # The space's task_params: image_size 32, num_classes 10.
  assert (search.image_size, search.num_classes) == (32, 10)
  assert (final.eval_role, final.train_examples, final.augment,
          final.epochs, final.eval_examples) == ("test", None, False, 2, None)


def test_api_search_takes_every_child_training_setting(tmp_path, cifar):
  """api.search(space, None, ...) trains the space's children with the
  child-training keywords (the child's learning rate is
  child_learning_rate); with a reward function they are refused."""
  names = {name for cls in CHILD_SETTINGS_CLASSES
           for name in options_lib.options(cls)}
  assert {n for _, n in api.CHILD_KEYWORDS.values()} == names
  assert api.CHILD_KEYWORDS["child_learning_rate"] == (TrainSettings,
                                                       "learning_rate")
  with pytest.raises(SettingError, match="^epochs=2: no child is trained"):
    api.search("stack_layers", lambda config: 0.0, str(tmp_path / "f"),
               epochs=2, verbose=False)
  # A bad child setting is named by its keyword, not the controller's.
  with pytest.raises(SettingError, match="^child_learning_rate=-1: must be "
                     "> 0"):
    api.search("cifar_cpu", None, str(tmp_path / "b"),
               child_learning_rate=-1, verbose=False)
  result = api.search(
      "cifar_cpu", None, str(tmp_path / "c"), max_trials=2, steps=2,
      batch_size=16, train_examples=64, eval_examples=32,
      child_learning_rate=0.05, data_dir=cifar.data_dir, rungs="none",
      retrain_best=False, progress_every_s=0, verbose=False,
      tensorboard=False)
  from graph_nas.search.store import TrialStore
  with TrialStore(result["store"]) as store:
    rows = store.trials()
    identity = store.get_meta("identity")
  assert [r["status"] for r in rows] == ["ok", "ok"]
  assert identity["budget"]["learning_rate"] == 0.05
  assert identity["budget"]["train_examples"] == 64
  assert result["final"] is None


def test_the_demo_child_budget_is_said_once():
  """launch/cifar_cpu_demo.flags holds the demo's child budget; the demo
  script and the benchmark read it and set no budget flag of their own."""
  from benchmarks import cifar_cpu_search
  script = (ROOT / "launch" / "cifar_cpu_demo.sh").read_text()
  bench = (ROOT / "benchmarks" / "cifar_cpu_search.py").read_text()
  assert 'cifar_cpu_demo.flags' in script and "--flagfile=" in script
  budget_flags = {options_lib.flag_name(TrainSettings, n)
                  for n in options_lib.identity_fields(TrainSettings)
                  if options_lib.options(TrainSettings)[n].flagged}
  for flag in budget_flags:
    for text in (script, bench):
      assert f"--{flag}=" not in text and f"--no{flag} " not in text, flag
  budget = cifar_cpu_search.demo_budget(None)
  lines = [l for l in cifar_cpu_search.DEMO_FLAGS.read_text().splitlines()
           if l.startswith("--")]
  assert f"--epochs={budget.epochs:g}" in lines
  assert f"--train_examples={budget.train_examples}" in lines
  assert cifar_cpu_search.CHILD == [f"--flagfile={cifar_cpu_search.DEMO_FLAGS}"]


def test_the_demo_search_flags_are_said_once():
  """launch/cifar_cpu_demo_search.flags holds the demo's screening and
  early stopping: the demo script reads it and sets none of them itself;
  the benchmark's screening study runs it, the same without its screening
  lines, and random search with the same stopping."""
  from benchmarks import cifar_cpu_search
  script = (ROOT / "launch" / "cifar_cpu_demo.sh").read_text()
  assert "cifar_cpu_demo_search.flags" in script
  search = cifar_cpu_search.demo_search_flags()
  assert "--screen=predictor" in search and "--eta=4" in search
  command = "\n".join(l for l in script.splitlines()
                      if not l.lstrip().startswith("#"))
  for line in search:
    assert line.split("=")[0] + "=" not in command, line
  arms = cifar_cpu_search.STUDIES["screening"]
  assert arms["default+screen"] == search
  stopping = [l for l in search if l.startswith(("--rungs=", "--eta="))]
  assert arms["default"] == stopping and len(stopping) == 2
  assert arms["random"] == ["--algorithm=random"] + stopping
  # The file parses as the launcher's flags: every line a declared flag.
  from absl import flags
  from graph_nas.search.settings import SearchSettings
  fv = flags.FlagValues()
  options_lib.define_flags(SearchSettings, fv)
  fv(["demo", f"--flagfile={cifar_cpu_search.DEMO_SEARCH_FLAGS}"])
  assert fv["eta"].value == 4 and fv["candidates_per_trial"].value == 13
