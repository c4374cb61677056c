r"""The main job: search a space.

  python -m graph_nas.launch --space=protos/cifar.textproto \
      --data_dir=../shared/data/tfds --out_dir=runs/cifar
  graph-nas-search --space=cifar_cpu ...   (installed; a shipped space)

(~500 lines: most of it is the child-training flags, which only the
launcher offers; the search, algorithm and executor flags are derived from
graph_nas.search.settings.)

{defaults}

--help lists every flag of the launcher, grouped, with its default and
help (absl's own flags: --helpfull). The dataset follows from the space
(its task_params "dataset"); toy spaces (stack layers, select optimizer)
run through the same launcher, scored by their toy reward without training.

--space is a textproto file or the name of a shipped space (protos/ of
the repository, package data when installed). A flag that would change
nothing in the chosen configuration (--workers with the in-process
executor, child-training flags for a toy space, ...) is an error naming it.
An --out_dir that is a file is refused before TensorFlow is loaded.

With the in-process executor, once the first child has trained ~30 s (or
has finished, if sooner), one line projects the time of a child and of the
whole search on this device (trials x that child's training time /
workers); a CPU search projected far beyond a day also gets a line naming
the CPU-sized space and the demo. On a machine without a GPU, TensorFlow's
CUDA probe is skipped (TF_ENABLED_DEVICE_TYPES=CPU), so no error-level
start-up line appears.

Rerunning the same command on the same --out_dir resumes the search.
Results: <out_dir>/trials.sqlite (every trial), top_trials.md,
rewards.png, best_architecture.json, best_child/model.keras, tensorboard/
(curves against the trial number; one HParams session per trial under
tensorboard/trials/).
"""

import json
import os
import sys
import textwrap

# Quiet TensorFlow's C++ start-up lines (set before TF is first imported).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags, logging  # noqa: E402

from graph_nas.cli import help as help_lib  # noqa: E402
from graph_nas.cli import projection  # noqa: E402  (no TensorFlow)

from graph_nas import options as options_lib  # noqa: E402
from graph_nas.search import settings as settings_lib  # noqa: E402
from graph_nas.child.settings import (  # noqa: E402  (no TensorFlow)
    CHILD_SETTINGS_CLASSES, RetrainSettings, TrainSettings)
from graph_nas.search.settings import (  # noqa: E402
    AlgorithmSettings, ExecutorSettings, SearchSettings)

FLAGS = flags.FLAGS
from graph_nas.search.screening import SCREEN_VALUES as _SCREEN_VALUES  # noqa: E402
# The search's, the algorithm's and the executor's settings: one flag each,
# derived from their declarations (graph_nas.search.settings).
for _cls in (SearchSettings, AlgorithmSettings, ExecutorSettings):
  settings_lib.define_flags(_cls)
# The command line names a scorer (a function of the config is the API's).
flags.register_validator(
    "screen", lambda value: value in _SCREEN_VALUES,
    message="must be one of " + ", ".join(_SCREEN_VALUES))

flags.DEFINE_string("space", None, "Search space: a textproto file, e.g. "
                    "protos/cifar.textproto, or a shipped space's name, "
                    "e.g. cifar_cpu.")
flags.DEFINE_string("evaluator", None, "Score every architecture with your "
                    "own Python function instead of the space's task: "
                    "module:function (fn(config) -> reward, or "
                    "fn(config, trial_id, seed); see graph_nas.api). No "
                    "child is trained.")
flags.DEFINE_string("enqueue", None, "A JSON file of architectures to "
                    "evaluate first, in order (warm start): a list of "
                    "configs, or of objects with a \"config\" entry (a "
                    "run's best_architecture.json is one). Each counts as "
                    "a trial; one queued in this folder before is not "
                    "queued again.")
flags.DEFINE_string("out_dir", None, "Output folder (default runs/<space "
                    "name>); rerun on it to resume.")
# Child training and the best child's retraining: one flag per declared
# setting (graph_nas.child.settings), with the launcher's own default and
# help where the space decides.
settings_lib.define_flags(TrainSettings, defaults_={
    "dataset": None}, help_={
        "dataset": "tfds dataset (default: the space's task_params "
                   "dataset).",
        "image_size": "Side of the images children see (default: the "
                      "space's task_params image_size, else the dataset's)."})
settings_lib.define_flags(RetrainSettings)

# The --help page: the launcher's flags by heading (graph_nas.cli.help). The
# declared settings go under their class's heading, or their declared one
# (Option.group: early stopping, screening).
EARLY_STOPPING = tuple(options_lib.flags_of(SearchSettings,
                                            group="early stopping"))
SCREENING = tuple(options_lib.flags_of(SearchSettings, group="screening"))
_CHILD_TRAINING = tuple(options_lib.flags_of(TrainSettings))
_OUTPUT = ("out_dir", *options_lib.flags_of(RetrainSettings))


HELP_GROUPS = (
    help_lib.Group("search", ["space", "evaluator", "enqueue",
                              *options_lib.flags_of(SearchSettings)]),
    help_lib.Group("algorithm", options_lib.flags_of(AlgorithmSettings)),
    help_lib.Group("early stopping", EARLY_STOPPING),
    help_lib.Group("screening", SCREENING),
    help_lib.Group("executor", options_lib.flags_of(ExecutorSettings)),
    help_lib.Group("child training", _CHILD_TRAINING),
    help_lib.Group("output", _OUTPUT),
)


def _defaults_paragraph():
  """The module text's defaults, from their declarations."""
  search = SearchSettings()
  shown = [("algorithm", AlgorithmSettings().algorithm),
           ("max_trials", search.max_trials),
           ("epochs", f"{FLAGS['epochs'].default:g}"),
           ("rungs", search.rungs), ("eta", f"{search.eta:g}"),
           ("executor", ExecutorSettings().executor)]
  return textwrap.fill(
      "Defaults (from their declarations: graph_nas.search.settings, and "
      "the child-training flags below): " + ", ".join(
          f"--{name}={value}" for name, value in shown) + ".", width=76,
      break_on_hyphens=False)


# The module text's {defaults}, filled in from the declarations (python -OO
# drops the module text).
if __doc__:
  __doc__ = __doc__.replace("{defaults}", _defaults_paragraph())


def _parse_flags(argv):
  """absl flag parsing that ends in one clear line, not usage text."""
  return help_lib.parse_flags(argv)


def _check_flags():
  if not FLAGS.space:
    sys.exit("error: --space is required, e.g. --space=cifar_cpu (a "
             "shipped space) or --space=path/to/space.textproto")
  if FLAGS.strategy == "tpu" and FLAGS.tpu is None:
    sys.exit("error: --strategy=tpu needs --tpu=<address> (or --tpu=local)")


def _train_settings(space):
  """(search, final) TrainSettings from the space and the flags."""
  from graph_nas.search import evaluators
  chosen = options_lib.flag_values_of(TrainSettings)
  return evaluators.space_train_settings(
      space, chosen, options_lib.from_flags(RetrainSettings))


# Flags of child training: no effect on a space that trains no child.
# (retrain_best is not one: a toy space may say --retrain_best=false.)
_IMAGE_FLAGS = (*_CHILD_TRAINING, *options_lib.flags_of(
    RetrainSettings, leave=("retrain_best",)))
# The launcher's wording where "only with --x=..." would say less: by
# (the other setting, its value now[, the values the setting needs]).
_NO_EFFECT_NOTES = {
    ("algorithm", "random"): "--algorithm=random has no controller",
    ("executor", "inprocess", ("process", "ray")):
        "--executor=inprocess evaluates one child at a time; use "
        "--executor=process or ray",
    ("target_flops", None): "only with --target_flops",
    ("retrain_best", False): "--retrain_best=false: the best child is not "
                             "retrained",
}


def _settings_without_effect(classes, auto_for=("predictor", "")):
  """[(flag names, why)] of the declared settings of `classes` given on the
  command line whose declaration says they act only with another setting's
  values (Option.only) that it does not take now, grouped by reason.
  auto_for: (what --screen=auto is for this evaluator, why when 'none')."""
  groups = {}
  for cls in classes:
    for _, flag, opt in settings_lib.given_flags(cls):
      if not opt.only:
        continue
      other, values = opt.only
      now = FLAGS[options_lib.flag_name(cls, other)].value
      auto = None
      if cls is SearchSettings and other == "screen" and now == "auto":
        auto = now = SearchSettings(
            screen=now, screen_features=FLAGS.screen_features).resolved(
                FLAGS.algorithm, auto_for[0]).screen
      if now in values:
        continue
      why = (_NO_EFFECT_NOTES.get((other, now, tuple(values))) or
             _NO_EFFECT_NOTES.get((other, now)) or
             f"only with --{other}=" + " or ".join(map(str, values)))
      if auto is not None:
        why = (f"--screen=auto is {auto!r} here ("
               + (auto_for[1] if auto_for[0] == "none" else
                  f"--algorithm={FLAGS.algorithm}")
               + "); screen with --screen=predictor or another scorer")
      if flag not in groups.setdefault(why, []):  # a shared flag: once
        groups[why].append(flag)
  return [(names, why) for why, names in groups.items()]


def _argv_position(flag):
  """Where --flag (or --noflag) first appears on the command line (flags
  from a flagfile: after all of them)."""
  for i, arg in enumerate(sys.argv):
    name = arg.lstrip("-").split("=", 1)[0]
    if arg.startswith("-") and name in (flag, "no" + flag):
      return i
  return len(sys.argv)


def _auto_screen(space):
  """(what --screen=auto is here, why when 'none'): none for image
  children and for an --evaluator that reports at rungs while early
  stopping is on (graph_nas.search.screening.evaluator_screen)."""
  from graph_nas.search.evaluators import IMAGE_TASK  # no TensorFlow
  if not FLAGS.evaluator:
    return (("none", "image children") if space.proto.task == IMAGE_TASK
            else ("predictor", ""))
  from graph_nas import api
  from graph_nas.search import halving, screening
  try:  # a bad name or rungs: their own one line comes later
    evaluator = api.load_evaluator(FLAGS.evaluator)
    rungs = halving.parse_rungs(FLAGS.rungs)
  except Exception:  # pylint: disable=broad-except
    return ("predictor", "")
  return (screening.evaluator_screen(evaluator, rungs),
          f"--evaluator={FLAGS.evaluator} reports at rungs, with early "
          "stopping on")


def _flags_without_effect(space):
  """[(flag names, why)] of the flags given that change nothing here."""
  from graph_nas.search.evaluators import IMAGE_TASK  # no TensorFlow
  given = [name for name in FLAGS if FLAGS[name].present]
  out = []

  def unused(names, why):
    # In the order the command line gave them.
    names = sorted((n for n in names if n in given), key=_argv_position)
    if names:
      out.append((names, why))

  if FLAGS.evaluator:
    unused(_IMAGE_FLAGS, f"--evaluator={FLAGS.evaluator} scores the "
                         "architectures: no child is trained")
  elif space.proto.task != IMAGE_TASK:
    unused(_IMAGE_FLAGS, f"{FLAGS.space} is a {space.proto.task!r} task: "
                         "no child is trained")
  else:
    if FLAGS.steps is not None:
      unused(["epochs"], "--steps sets the training length")
    for names, why in _settings_without_effect(CHILD_SETTINGS_CLASSES):
      unused(names, why)
  for names, why in _settings_without_effect(
      (ExecutorSettings, SearchSettings, AlgorithmSettings),
      _auto_screen(space)):
    unused(names, why)
  return out


# The library names settings by their Python names (graph_nas.errors.Naming);
# a one-line error of the launcher names the flags instead: the declared
# settings' flags (graph_nas.search.settings), and the launcher's own.
# (A child-training setting whose name a search setting also has, e.g.
# learning_rate, keeps the search setting's flag here; its budget entry is
# named by BUDGET_FLAGS.)
SETTING_NAMING = settings_lib.flag_naming(extra={
    **{name: options_lib.flag_name(cls, name)
       for cls in CHILD_SETTINGS_CLASSES for name in options_lib.options(cls)
       if name not in settings_lib.flag_naming().names},
    "space": "space", "space_name": "space", "evaluator": "evaluator",
    "out_dir": "out_dir"})
# Entries of the evaluator's budget (TrainSettings.budget_identity) ->
# flags; an entry without a flag (set by the space) keeps its name.
BUDGET_FLAGS = {name: "--" + options_lib.flag_name(TrainSettings, name)
                for name in options_lib.identity_fields(TrainSettings)
                if options_lib.options(TrainSettings)[name].flagged}
BUDGET_FLAGS.update({"evaluator": "--evaluator", "out_dir": "--out_dir"})


def _error_line(error) -> str:
  """The launcher's one line for a GraphNasError, naming flags."""
  from graph_nas import errors
  if isinstance(error, errors.SettingsFault):
    error.named(errors.Naming(BUDGET_FLAGS, quote_strings=False)
                if getattr(error, "budget", False) else SETTING_NAMING)
  return f"error: {error}"


# The launcher's own flags in the run's record (beside its settings): the
# child-training and retraining flags, and --evaluator.
_RECORDED_FLAGS = (*_CHILD_TRAINING, *options_lib.flags_of(RetrainSettings),
                   "evaluator")


def _check_flags_have_effect(space):
  """One error line naming every flag that would be silently ignored."""
  unused = _flags_without_effect(space)
  if unused:
    sys.exit("error: flags with no effect here: " + "; ".join(
        f"{', '.join('--' + n for n in names)} ({why})"
        for names, why in unused) + ". Drop them.")


def keras_backend():
  """The Keras backend that `import keras` will choose (without importing
  it): $KERAS_BACKEND, else keras.json's "backend", else tensorflow."""
  name = os.environ.get("KERAS_BACKEND")
  if name:
    return name, "KERAS_BACKEND"
  home = os.environ.get("KERAS_HOME") or os.path.join(
      os.path.expanduser("~"), ".keras")
  path = os.path.join(home, "keras.json")
  try:
    with open(path, encoding="utf-8") as f:
      return str(json.load(f).get("backend", "tensorflow")), path
  except (OSError, ValueError, AttributeError):
    return "tensorflow", None


def _check_keras_backend():
  name, where = keras_backend()
  if name != "tensorflow":
    sys.exit(f"error: graph-nas needs the TensorFlow Keras backend, but "
             f"{where} selects {name!r}: set KERAS_BACKEND=tensorflow (or "
             "unset it)")


def _device_kind():
  import tensorflow as tf
  if FLAGS.strategy == "tpu":
    return "TPU"
  return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"


def _watch_first_child(evaluator, job, space):
  """In-process children: a SearchProjection on the evaluator's trainer
  (children in worker processes are not watched)."""
  trainer = getattr(evaluator, "trainer", None)
  observers = getattr(trainer, "observers", None)
  left = FLAGS.max_trials - job.store.count()
  if FLAGS.executor != "inprocess" or observers is None or left < 1:
    return
  observers.append(projection.SearchProjection(
      left, FLAGS.max_trials, 1, _device_kind(), space_name=space.name,
      early_stopping=bool(job.rungs)))


def _out_dir(space):
  """The output folder (--out_dir, else runs/<space name>); exits with one
  line when it, or a folder it would be in, is a file. Before TensorFlow
  is imported."""
  out_dir = FLAGS.out_dir or os.path.join("runs", space.name)
  shown = f"--out_dir={out_dir}" + ("" if FLAGS.out_dir else " (the "
                                     "default)")
  in_the_way = help_lib.file_in_the_way(out_dir)
  if in_the_way:
    sys.exit(f"error: {shown}: {in_the_way}")
  return out_dir


def _load_space():
  """The space of --space, its flags checked; exits with one line."""
  from graph_nas import space as space_lib  # no TensorFlow: fast errors
  from graph_nas.errors import GraphNasError
  try:
    space = space_lib.load(FLAGS.space)  # a file, or a shipped space's name
  except GraphNasError as e:
    sys.exit(f"error: {e}")
  _check_flags_have_effect(space)
  if FLAGS.enqueue:
    global _ENQUEUED
    _ENQUEUED = _read_enqueue(space, FLAGS.enqueue)
  if not FLAGS.evaluator and not space.proto.task:
    sys.exit(f"error: {space.source}: the space names no task (e.g. one "
             "written by graph_nas.api): score it with "
             "--evaluator=module:function")
  return space


_ENQUEUED = []  # --enqueue's configs, checked against the space


def _read_enqueue(space, path):
  """The configs of an --enqueue file, each a walk of `space`; exits with
  one line naming the file (and the config) at fault."""
  import json
  from graph_nas.errors import GraphNasError
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except OSError as e:
    sys.exit(f"error: --enqueue={path}: {e.strerror or e}")
  except ValueError as e:
    sys.exit(f"error: --enqueue={path}: not JSON: {e}")
  if isinstance(data, dict):
    data = [data]
  if not isinstance(data, list):
    sys.exit(f"error: --enqueue={path}: expected a list of configs, got "
             f"{type(data).__name__}")
  configs = []
  for i, item in enumerate(data):
    config = (item["config"] if isinstance(item, dict) and
              isinstance(item.get("config"), dict) else item)
    try:
      space.walk_of(config)
    except GraphNasError as e:
      sys.exit(f"error: --enqueue={path}: config #{i}: {e}")
    configs.append(config)
  return configs


def _evaluator(space):
  """(evaluator, budget, training settings or None) of this run."""
  from graph_nas import api
  from graph_nas.search import evaluators
  if FLAGS.evaluator:  # resumes with the same one only
    return (api.load_evaluator(FLAGS.evaluator),
            {"evaluator": FLAGS.evaluator}, None)
  train_settings = final_settings = budget = None
  if space.proto.task == evaluators.IMAGE_TASK:
    train_settings, final_settings = _train_settings(space)
    budget = train_settings.budget_identity()
  evaluator = evaluators.evaluator_for(space, train_settings, final_settings)
  if train_settings is not None:
    from graph_nas.child import strategies
    import keras
    logging.info("children train on %s; Keras backend: %s",
                 strategies.describe_devices(), keras.backend.backend())
    # Fail within seconds when the dataset is missing; the data is read
    # once for the whole search.
    evaluator.prepare()
  return evaluator, budget, train_settings


def _search(space, out_dir):
  """Assembles and runs the search in `out_dir`; {"timing", "result"},
  "out_dir"."""
  from graph_nas.report import observers as report_observers
  from graph_nas.search import assemble
  evaluator, budget, train_settings = _evaluator(space)
  # The record of the run: its settings (assemble adds them) and the
  # launcher's own flags.
  record = {name: FLAGS[name].value for name in _RECORDED_FLAGS}
  loop_settings = settings_lib.from_flags(SearchSettings)
  job = assemble.assemble(
      space, evaluator, out_dir, search=loop_settings,
      algorithm=settings_lib.from_flags(AlgorithmSettings),
      executor=settings_lib.from_flags(ExecutorSettings), budget=budget,
      record=record,
      observers=report_observers.from_settings(loop_settings, out_dir))
  if _ENQUEUED:
    added = job.enqueue(_ENQUEUED, source=FLAGS.enqueue)
    logging.info("--enqueue: %d architectures queued (%d queued before)",
                 added, len(_ENQUEUED) - added)
  if train_settings is not None:
    _watch_first_child(evaluator, job, space)
  done = assemble.run_search(job, retrain=FLAGS.retrain_best)
  done["out_dir"] = out_dir
  return done


def _print_summary(done):
  timing, result, out_dir = done["timing"], done["result"], done["out_dir"]
  print(result["table"])
  print(f"search time {timing['wall_s']:.1f}s, of which outside child "
        f"evaluation {100 * timing['outside_evaluation_share']:.1f}%")
  if timing.get("screened_out"):
    print(f"screening: {timing['screened_out']} candidates screened out "
          f"beside the {timing['trials_evaluated']} evaluated by this run "
          "(top_trials.md: the best-scored of them)")
  final = result["final"]
  if final:
    print(f"best child retrained: status {final['status']}, test accuracy "
          f"{final.get('test_accuracy')}")
  print(f"results in {out_dir}/: trials.sqlite, top_trials.md, rewards.png, "
        "best_architecture.json" + (", best_child/model.keras"
                                    if final.get("files") else "") +
        (f"; TensorBoard: tensorboard --logdir {out_dir}/tensorboard"
         if os.path.isdir(os.path.join(out_dir, "tensorboard")) else ""))


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")
  _check_flags()
  _check_keras_backend()
  projection.skip_absent_gpu_probe(FLAGS.strategy)  # before TensorFlow
  space = _load_space()
  out_dir = _out_dir(space)
  from graph_nas.errors import GraphNasError
  try:
    done = _search(space, out_dir)
  except GraphNasError as e:
    sys.exit(_error_line(e))
  _print_summary(done)
  logging.flush()


def run():
  """Entry point of the command (graph-nas-search, python -m
  graph_nas.launch): --help prints the launcher's flags and exits 0."""
  help_lib.run_command(main, HELP_GROUPS, __doc__, "graph_nas.launch",
                       "--space=SPACE [flags]", flags_parser=_parse_flags)


if __name__ == "__main__":
  run()
