"""The Python front door: build a space in code, search it with your reward.

  from graph_nas import api

  b = api.SpaceBuilder("stack", start="stack", max_steps=30)
  b.default("num_layers", 0)
  b.vertex("stack").action("add", "stack", key="num_layers", op="ADD",
                           value=1).action("stop", "end")
  b.vertex("end")
  space = b.build()              # validated exactly as a textproto is
  text = b.to_textproto()        # space.loads(text) gives the same space

  def reward(config):            # config: the decoded walk, a dict
    return -abs(config["num_layers"] - 7)

  result = api.search(space, reward, "runs/stack", max_trials=100)
  result["best"]["config"], result["store"]

A space built here is a `graph_nas.protos.search_space_pb2.SearchSpace`
message validated by the same code (`graph_nas.space.SearchSpace`) that
validates a loaded textproto, so it fails where, and as, the textproto
would: a GraphNasError naming the vertex and action at fault.

A reward is a plain function `fn(config) -> float` (or
`fn(config, trial_id, seed)`); it may also return a dict with a "reward"
entry (the other entries are stored as the trial's metrics) or a
`graph_nas.results.EvalResult`. An object with an
`evaluate(config, trial_id, seed)` method returning an EvalResult is used
as it is.

Early stopping (on by default: rungs="1/4,1/2", eta=2; see
graph_nas.search.halving): a function with a parameter named `trial`
(`fn(config, trial)` or `fn(config, trial_id, seed, trial)`; an
evaluator class's `evaluate(config, trial_id, seed, trial=None)`) reports
as it trains and ends when told::

  def train(config, trial):
    for epoch in range(1, 11):
      score = ...                      # train an epoch, score it
      trial.report(score, epoch / 10)  # the share of its budget done
      if trial.should_stop():
        break
    return score

To train each architecture your own way and report back (ask and tell,
warm starts, a study to query), see `api.Study` and `api.load_study`
(graph_nas.study).

To run on the process or Ray
executor the function must be importable by the workers: define it at the
top level of a module, not as a lambda or inside a function.
"""

import contextlib
import inspect
import os
import pickle
from typing import Any, Dict, Optional, Sequence

# No TensorFlow start-up noise (its C++ INFO lines; the CUDA probe's error
# line on a machine without a GPU): set before TensorFlow is first
# imported, as the launcher does. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from graph_nas.devices import skip_absent_gpu_probe  # noqa: E402
skip_absent_gpu_probe()

from graph_nas import options as options_lib  # noqa: E402
from graph_nas.child.settings import CHILD_SETTINGS_CLASSES  # noqa: E402
from graph_nas.search import settings as settings_lib  # noqa: E402
from graph_nas import space as space_lib
from graph_nas.errors import (GraphNasError, Naming, SettingError,
                              SettingsFault)
from graph_nas.search.evaluators import FunctionEvaluator
from graph_nas.space.builder import (TEXTPROTO_HEADER,  # noqa: F401
                                     SpaceBuilder, VertexBuilder)

# The ask-and-tell front door (graph_nas.study), loaded when first named.
_STUDY_NAMES = ("Study", "StudyView", "TrialRecord", "load_study")


def __getattr__(name):
  if name in _STUDY_NAMES:
    from graph_nas import study
    return getattr(study, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------- evaluators
def as_evaluator(obj):
  """An evaluator object from a function, an evaluator instance or an
  evaluator class (instantiated without arguments)."""
  if inspect.isclass(obj):
    if not callable(getattr(obj, "evaluate", None)):
      raise GraphNasError(f"class {obj.__qualname__} has no evaluate() "
                          "method")
    obj = obj()
  if callable(getattr(obj, "evaluate", None)):
    return obj
  return FunctionEvaluator(obj)


def load_evaluator(spec: str):
  """The evaluator named by "module:function" (or module:Class /
  module:object with an evaluate method). The current directory is
  searched for the module too."""
  obj = options_lib.load_named(spec, "evaluator", "my_rewards:reward")
  try:
    return as_evaluator(obj)
  except GraphNasError as e:
    raise SettingError("evaluator", spec, str(e)) from None


def evaluator_name(obj) -> str:
  """module:qualname of a function or of an evaluator's class (part of a
  run's identity: a folder is resumed with the same evaluator only)."""
  target = obj if inspect.isfunction(obj) or inspect.isclass(obj) else \
      type(obj)
  if isinstance(obj, FunctionEvaluator):
    return evaluator_name(obj.fn)
  return (f"{getattr(target, '__module__', '?')}:"
          f"{getattr(target, '__qualname__', type(target).__name__)}")


def _check_picklable(evaluator, executor: str) -> None:
  try:
    pickle.dumps(evaluator)
  except Exception as e:  # pylint: disable=broad-except
    raise SettingError(
        "evaluate", evaluator_name(evaluator),
        f"executor={executor!r} sends the evaluator to other processes, "
        f"but it does not pickle ({type(e).__name__}: {e}): define the "
        "reward function at the top level of a module (not a lambda or a "
        "nested function), or use executor='inprocess'") from None


# search()'s keyword arguments are the settings' own names (graph_nas.
# search.settings, graph_nas.child.settings), except a child-training
# setting whose name a search setting has (the child's learning_rate is
# child_learning_rate, its flag's name); the budget entry "evaluator" is
# the `evaluate` argument.
_SEARCH_NAMES = {name for cls in settings_lib.SETTINGS_CLASSES
                 for name in options_lib.options(cls)}
CHILD_KEYWORDS = {
    (name if name not in _SEARCH_NAMES else
     options_lib.flag_name(cls, name)): (cls, name)
    for cls in CHILD_SETTINGS_CLASSES for name in options_lib.options(cls)}
# Child-training settings whose errors name them by their API keyword.
_CHILD_ONLY = {name for _, name in CHILD_KEYWORDS.values()} - _SEARCH_NAMES
API_NAMES = Naming({"evaluator": "evaluate"})
BUDGET_NAMES = Naming({"evaluator": "evaluate", **{
    name: keyword for keyword, (_, name) in CHILD_KEYWORDS.items()}})


# ---------------------------------------------------------------- search
def search(space, evaluate, out_dir: str, *,
           executor_kwargs: Optional[Dict[str, Any]] = None,
           enqueue: Sequence[Dict[str, Any]] = (),
           verbose: bool = True, **settings) -> Dict[str, Any]:
  """Runs (or, on the same out_dir, resumes) a search; returns its best.

  space: a SearchSpace, a SpaceBuilder, or a textproto path / shipped name.
  evaluate: a reward function or an evaluator (see the module docstring).
    A function that cannot be called as fn(config) or fn(config, trial_id,
    seed) is refused before the first trial; one that returns no number
    (or a dict without "reward") stops the search at its first trial.
    None: the space's own task, as the launcher runs it: an image space's
    children are trained (the child-training keywords below, e.g.
    epochs=2, train_examples=5120, child_learning_rate=0.1; the best
    child retrained at the end unless retrain_best=False), a toy space is
    scored by its toy reward.
  executor_kwargs: the Ray settings (address, cpus_per_child,
    gpus_per_child, retries) as one dict; they may also be given directly.
  enqueue: architectures (configs) evaluated first, in order (a warm
    start: your current model); each counts as a trial and teaches the
    algorithm. One queued in this folder before is not queued again. A
    config that is no walk of the space is a GraphNasError naming the
    first decision that does not fit.
  verbose: print the progress (a line per trial with the best so far and
    an ETA; the launcher's) to stderr; False: quiet.
  settings: any of the settings below, by name (keyword-only). Each is
    declared once (graph_nas.search.settings; child training in
    graph_nas.child.settings, only with evaluate=None: TrainSettings'
    learning_rate is the keyword child_learning_rate), with the default
    every front door (the launcher's flags included) uses. `screen` also
    takes a function of the config (cheap, higher is more promising): with
    candidates_per_trial=K it picks which of K proposals per trial run.
    `screen_features` also takes the function itself.

{settings}

  Returns {"best": {trial_id, reward, walk, config, metrics, space},
  "store": path of trials.sqlite, "out_dir", "timing", "table"}. The
  folder also holds top_trials.md, rewards.png, best_architecture.json and
  tensorboard/, as after a launcher run.

  Errors that name a setting name it as the keyword argument above
  (evaluate=..., max_consecutive_failures=10).
  """
  try:
    with _progress(verbose):
      return _search(space, evaluate, out_dir, dict(executor_kwargs or {},
                                                    **settings),
                     list(enqueue))
  except SettingsFault as e:
    e.named(BUDGET_NAMES if getattr(e, "budget", False) or
            getattr(e, "of_child", False) or
            getattr(e, "setting", None) in _CHILD_ONLY else API_NAMES)
    raise


if search.__doc__:
  search.__doc__ = search.__doc__.replace("{settings}", options_lib.describe(
      (*settings_lib.SETTINGS_CLASSES, *CHILD_SETTINGS_CLASSES), indent=2))


@contextlib.contextmanager
def _progress(verbose: bool):
  """absl's INFO lines (the search's progress) on stderr while searching
  when verbose, nothing below a warning when not."""
  from absl import logging
  before = logging.get_verbosity()
  logging.set_verbosity(logging.INFO if verbose else logging.WARNING)
  try:
    yield
  finally:
    logging.set_verbosity(before)


def _check_signature(evaluator, name: str) -> None:
  """A plain function that cannot be called as an evaluator is refused
  before any trial, with the reason."""
  if not isinstance(evaluator, FunctionEvaluator):
    return
  fn = evaluator.fn
  try:
    sig = inspect.signature(fn)
  except (TypeError, ValueError):
    return  # a builtin without a signature: its first call will tell
  kwargs = {"trial": None} if evaluator.takes_trial else {}
  try:
    if evaluator.trial_args:
      sig.bind({}, 0, 0, **kwargs)
    else:
      sig.bind({}, **kwargs)
  except TypeError as e:
    raise SettingError("evaluator", name, f"cannot be called as fn(config) "
                       f"or fn(config, trial_id, seed): {e}") from None


def _as_space(space):
  if isinstance(space, SpaceBuilder):
    return space.build()
  if isinstance(space, (str, os.PathLike)):
    return space_lib.load(os.fspath(space))
  if not isinstance(space, space_lib.SearchSpace):
    raise GraphNasError(f"space must be a SearchSpace, a SpaceBuilder or a "
                        f"textproto path, got {type(space).__name__}")
  return space


def function_settings(space, evaluator, overrides: Dict[str, Any]):
  """screen=fn and screen_features=fn, the settings the API also takes as
  functions: each is recorded by its name in `overrides` (in place) and
  used as given. Returns scorer(loop_settings): the screening's scorer
  they make (None: the settings name it)."""
  from graph_nas.search import screening
  screen = overrides.get("screen")
  if screen is not None and not isinstance(screen, str):
    made = screening.make_scorer(screen, space, evaluator)
    overrides["screen"] = screening.FUNCTION_PREFIX + evaluator_name(screen)
    return lambda loop_settings: made
  features = overrides.get("screen_features")
  if not callable(features):
    return lambda loop_settings: None
  overrides["screen_features"] = evaluator_name(features)

  def featured(loop_settings):
    """The loop's own predictor (its seed, min_trials, cost weight) on
    the user's features."""
    # screen_features only with screen="predictor" (or "auto", which it
    # makes the predictor).
    loop_settings = loop_settings.check().resolved("")
    return screening.scorer_of(loop_settings, space, None, features)
  return featured


def _search(space, evaluate, out_dir, overrides, enqueue=()):
  from graph_nas.report import observers as report_observers
  from graph_nas.search import assemble
  from graph_nas import search as search_lib
  space = _as_space(space)
  for i, config in enumerate(enqueue):  # before the folder is made
    try:
      space.walk_of(config)
    except GraphNasError as e:
      raise GraphNasError(f"enqueue: config #{i}: {e}") from None
  child = {CHILD_KEYWORDS[k]: overrides.pop(k) for k in list(overrides)
           if k in CHILD_KEYWORDS}
  if evaluate is None:
    evaluator, budget, record, retrain = _task_evaluator(space, child)
  else:
    if child:
      (_, name), value = next(iter(child.items()))
      raise SettingError(name, value, "no child is trained: `evaluate` "
                         "scores the architectures (evaluate=None trains "
                         "the space's children)")
    evaluator = as_evaluator(evaluate)
    _check_signature(evaluator, evaluator_name(evaluate))
    budget = {"evaluator": evaluator_name(evaluate)}
    record = {"evaluator": repr(evaluator), "api": True}
    retrain = False
  make_scorer = function_settings(space, evaluator, overrides)
  chosen = settings_lib.split_overrides(overrides)
  scorer = make_scorer(chosen[settings_lib.SearchSettings])
  executor = chosen[settings_lib.ExecutorSettings]
  if executor.executor != "inprocess":
    _check_picklable(evaluator, executor.executor)
  loop_settings = chosen[settings_lib.SearchSettings]
  job = assemble.assemble(
      space, evaluator, out_dir, search=loop_settings,
      algorithm=chosen[settings_lib.AlgorithmSettings], executor=executor,
      budget=budget, record=record, scorer=scorer,
      observers=report_observers.from_settings(loop_settings, out_dir))
  if enqueue:
    try:
      job.enqueue(enqueue, source="enqueue")
    except BaseException:
      job.close()
      raise
  done = assemble.run_search(job, retrain=retrain)
  result = done["result"]
  return {"best": result["best"],
          "store": os.path.join(out_dir, search_lib.DB_NAME),
          "out_dir": out_dir, "timing": done["timing"],
          "table": result["table"], "final": result.get("final") or None}


def _task_evaluator(space, child):
  """(evaluator, budget, record, retrain) of the space's own task, its
  children trained with `child` ({(settings class, name): value})."""
  from graph_nas.child.settings import RetrainSettings, TrainSettings
  from graph_nas.search import evaluators
  train = {name: v for (cls, name), v in child.items() if cls is
           TrainSettings}
  again = RetrainSettings().replace(**{
      name: v for (cls, name), v in child.items()
      if cls is RetrainSettings}).check()
  if space.proto.task != evaluators.IMAGE_TASK:
    if child:
      (_, name), value = next(iter(child.items()))
      raise SettingError(name, value, f"the space's task is "
                         f"{space.proto.task!r}: no child is trained")
    if not space.proto.task:
      raise GraphNasError("evaluate=None: the space names no task; pass "
                          "a reward function", source=space.source)
    return (evaluators.evaluator_for(space), None,
            {"task": space.proto.task, "api": True}, False)
  try:
    search_settings, final = evaluators.space_train_settings(space, train,
                                                             again)
  except SettingsFault as e:
    e.of_child = True  # named by the child keywords (child_learning_rate)
    raise
  evaluator = evaluators.evaluator_for(space, search_settings, final)
  evaluator.prepare()  # a missing dataset fails now, in one line
  record = {"api": True, **options_lib.as_record(search_settings),
            **options_lib.as_record(again)}
  return (evaluator, search_settings.budget_identity(), record,
          again.retrain_best)
