r"""Toy-task experiment runner: the paper's Figs. 2 and 4.

  python -m graph_nas.experiment --task=stack_layers --out=runs/stack
  python -m graph_nas.experiment --task=select_optimizer_b4 --algorithm=pqt

For each form (graph, linear, random search on the graph), runs `replicas`
independent searches of `trials` walks each, records every replica's
best-so-far reward curve as JSON and plots mean best reward against trials
with a min-max band, all forms on one chart (PNG).

Each replica is one graph_nas.search.Search -- the loop, store and
checkpoint of the main job -- in <out>/<form>/replica_<i> (seed + i), so
an interrupted experiment resumes where it stopped when rerun with the
same flags; <out>/settings.json refuses a rerun with other settings.
"""

import dataclasses
import json
import math
import os
import time
from typing import Dict, List

import numpy as np
from absl import flags, logging

from graph_nas import curves as curves_lib
from graph_nas.cli import help as help_lib
from graph_nas.report import observers as report_observers
from graph_nas.search import assemble, evaluators
from graph_nas.search import settings as settings_lib
from graph_nas import space as space_lib
from graph_nas.errors import GraphNasError
from graph_nas.search.settings import AlgorithmSettings, SearchSettings

# The paper's settings (sections 4.1, 4.2): REINFORCE with these.
PAPER_SETTINGS = {
    "stack_layers": {"learning_rate": 1e-3, "entropy_weight": 0.1},
    "select_optimizer_b2": {"learning_rate": 1e-4, "entropy_weight": 0.8},
    "select_optimizer_b4": {"learning_rate": 1e-4, "entropy_weight": 0.8},
}
FORMS = ("graph", "linear", "random")

_TASK = flags.DEFINE_enum("task", "stack_layers", sorted(PAPER_SETTINGS),
                          "Toy task (its graph and linear spaces are "
                          "protos/<task>.textproto and <task>_linear).")
_FORMS = flags.DEFINE_list("forms", list(FORMS),
                           "Which of graph, linear, random to run.")
_REPLICAS = flags.DEFINE_integer("replicas", 10, "Independent replicas.",
                                 lower_bound=1)
_TRIALS = flags.DEFINE_integer("trials", 200, "Walks per replica.",
                               lower_bound=1)
_SPACES = flags.DEFINE_string("spaces_dir", "protos",
                              "Folder with the task textprotos.")
_OUT = flags.DEFINE_string("out", None, "Output folder (default: "
                           "runs/toy/<task>).")
# The algorithm's settings and the loop's walks_per_update and seed: the
# launcher's flags, derived from the same declarations (graph_nas.search.settings).
# The experiment reproduces the paper: its algorithm is REINFORCE, and the
# learning rate and entropy weight default to the paper's for the task.
_PAPER = "(default: the paper's for the task, PAPER_SETTINGS)"
# The paper's controller: REINFORCE, every walk it samples is a trial, raw
# advantages.
PAPER_CONTROLLER = {"no_repeats": False, "normalize_advantages": False}
EXPERIMENT_DEFAULTS = {"algorithm": "reinforce", "learning_rate": None,
                       **PAPER_CONTROLLER}
settings_lib.define_flags(
    AlgorithmSettings, defaults_=EXPERIMENT_DEFAULTS,
    help_={"learning_rate": f"Controller (Adam) learning rate {_PAPER}.",
           "entropy_weight": f"Entropy regularisation weight {_PAPER}.",
           "algorithm": "Learning algorithm for the graph and linear forms "
                        "(the random form is random search)."})
settings_lib.define_flags(
    SearchSettings, names=("walks_per_update", "seed"),
    help_={"seed": "Seed of replica 0 (replica i uses seed + i)."})
FLAGS = flags.FLAGS
# The settings.json of an experiment records these always (folders written
# before the other algorithm settings existed still resume), the others
# when they differ from their declared default.
_ALWAYS_RECORDED = ("algorithm", "learning_rate", "entropy_weight",
                    "entropy_mode", "value_features", "queue_size",
                    "pg_weight")


def run_replica(space: space_lib.SearchSpace,
                algorithm: AlgorithmSettings, out_dir: str, *,
                trials: int, walks_per_update: int, seed: int,
                evaluator=None) -> List[float]:
  """One search (graph_nas.search.assemble) in out_dir (rerunning resumes it);
  returns the reward of each trial (NaN for a failed one)."""
  evaluator = evaluator or evaluators.evaluator_for(space)
  settings = SearchSettings(
      max_trials=trials, walks_per_update=walks_per_update, seed=seed,
      log_every=trials, tensorboard=False, checkpoint_every_s=30.0,
      sync_store=False)
  job = assemble.assemble(space, evaluator, out_dir, search=settings,
                          algorithm=algorithm,
                          budget={"evaluator": f"toy:{space.proto.task}"},
                          record={"experiment": True},
                          observers=report_observers.from_settings(
                              settings, out_dir))
  try:
    job.run()
    rows = job.store.trials()[:trials]  # a rerun may ask for fewer
  finally:
    job.close()
  return [float(r["reward"]) if r["status"] == "ok" else math.nan
          for r in rows]


def best_so_far(rewards: List[float]) -> List[float]:
  """The best reward after each trial (failed trials, NaN, count as -inf),
  as a list for curves.json (graph_nas.curves.best_so_far)."""
  return curves_lib.best_so_far(rewards).tolist()


def paper_algorithm(**changes) -> AlgorithmSettings:
  """The experiment's AlgorithmSettings: the declared defaults, the paper's
  controller (PAPER_CONTROLLER: REINFORCE, raw advantages, repeats are
  trials) and `changes`, checked."""
  return AlgorithmSettings(**{"algorithm": "reinforce", **PAPER_CONTROLLER,
                              **changes}).check()


def run_form(form: str, task: str, algorithm: AlgorithmSettings, *,
             replicas: int, trials: int, walks_per_update: int, seed: int,
             spaces_dir: str, out: str,
             log_every: bool = True) -> List[List[float]]:
  """All replicas of one form (replica i in <out>/<form>/replica_<i>, seed
  seed + i); returns their per-trial rewards (see best_so_far).

  algorithm: the declared settings of the controller (e.g.
    paper_algorithm(learning_rate=1e-3, entropy_weight=0.1)); the random
    form searches with algorithm='random'.
  """
  name = task + ("_linear" if form == "linear" else "")
  space = space_lib.load(os.path.join(spaces_dir, name + ".textproto"))
  evaluator = evaluators.evaluator_for(space)
  algo = (algorithm.replace(algorithm="random") if form == "random"
          else algorithm).check()
  runs = []
  start = time.time()
  for i in range(replicas):
    runs.append(run_replica(
        space, algo, os.path.join(out, form, f"replica_{i}"), trials=trials,
        walks_per_update=walks_per_update, seed=seed + i,
        evaluator=evaluator))
    if log_every:
      elapsed = time.time() - start
      eta = elapsed / (i + 1) * (replicas - i - 1)
      logging.info("%s %s replica %d/%d: best %.4f  (%.1fs, ETA %.0fs)",
                   task, form, i + 1, replicas, np.nanmax(runs[-1]),
                   elapsed, eta)
  return runs


def check_settings(out: str, settings: Dict) -> None:
  """Records the experiment's settings in <out>/settings.json, or raises
  GraphNasError when the folder holds an experiment with other settings
  (its replicas would resume under a different controller)."""
  path = os.path.join(out, "settings.json")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      old = json.load(f)
    diff = sorted(k for k in set(old) | set(settings)
                  if old.get(k) != settings.get(k))
    if diff:
      raise GraphNasError(
          "written by an experiment with other settings ("
          + ", ".join(f"{k}: {old.get(k)!r} there, {settings.get(k)!r} now"
                      for k in diff) + "): use another --out or the same "
          "settings to resume it", source=path)
    return
  with open(path, "w", encoding="utf-8") as f:
    json.dump(settings, f, indent=1)


def summarize(curves: List[List[float]],
              checkpoints=(10, 25, 50, 100, 200)) -> Dict:
  arr = np.asarray(curves)
  out = {f"mean_best@{c}": float(arr[:, c - 1].mean())
         for c in checkpoints if c <= arr.shape[1]}
  hits = [int(np.argmax(c >= 1.0)) + 1 if c.max() >= 1.0 else None
          for c in arr]
  got = [h for h in hits if h is not None]
  out["replicas_at_1.0"] = len(got)
  out["replicas"] = len(curves)
  out["median_first_1.0"] = float(np.median(got)) if got else None
  return out


def plot(results: Dict[str, List[List[float]]], title: str, path: str):
  """Mean best reward vs trials with a min-max band (paper Figs. 2, 4)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  colors = {"graph": "tab:blue", "linear": "tab:orange",
            "random": "tab:gray"}
  for form, curves in results.items():
    arr = np.asarray(curves)
    x = np.arange(1, arr.shape[1] + 1)
    ax.plot(x, arr.mean(0), label=form, color=colors.get(form))
    ax.fill_between(x, arr.min(0), arr.max(0), alpha=0.2,
                    color=colors.get(form))
  ax.set_xlabel("trials")
  ax.set_ylabel("best reward")
  ax.set_title(title, fontsize=9)
  ax.set_ylim(0, 1.02)
  ax.legend(loc="lower right")
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv):
  if len(argv) > 1:
    raise SystemExit(f"error: unexpected arguments: {' '.join(argv[1:])}")
  task = _TASK.value
  bad = [f for f in _FORMS.value if f not in FORMS]
  if bad:
    raise SystemExit(f"error: --forms: unknown form(s) {', '.join(bad)}; "
                     f"use {', '.join(FORMS)}")
  try:
    chosen = settings_lib.from_flags(AlgorithmSettings, **{
        name: (FLAGS[name].value if FLAGS[name].value is not None else
               PAPER_SETTINGS[task][name])
        for name in ("learning_rate", "entropy_weight")})
  except GraphNasError as e:
    raise SystemExit(f"error: {e.named(settings_lib.flag_naming())}") \
        from None
  lr, beta = chosen.learning_rate, chosen.entropy_weight
  out = _OUT.value or os.path.join("runs", "toy", task)
  os.makedirs(out, exist_ok=True)
  # A setting is recorded when it differs from the experiment's default (so
  # folders written before a setting existed resume).
  declared = {**settings_lib.defaults(AlgorithmSettings),
              **EXPERIMENT_DEFAULTS}
  record = {k: v for k, v in dataclasses.asdict(chosen).items()
            if k in _ALWAYS_RECORDED or v != declared[k]}
  settings = dict(task=task, **record,
                  walks_per_update=FLAGS.walks_per_update, seed=FLAGS.seed)
  results, summary = {}, {}
  try:
    check_settings(out, settings)
    settings.update(replicas=_REPLICAS.value, trials=_TRIALS.value)
    for form in _FORMS.value:
      rewards = run_form(form, task, chosen, replicas=_REPLICAS.value,
                         trials=_TRIALS.value,
                         walks_per_update=FLAGS.walks_per_update,
                         seed=FLAGS.seed, spaces_dir=_SPACES.value, out=out)
      curves = [best_so_far(r) for r in rewards]
      results[form] = curves
      summary[form] = summarize(curves)
  except GraphNasError as e:
    raise SystemExit(f"error: {e}") from None
  with open(os.path.join(out, "curves.json"), "w", encoding="utf-8") as f:
    json.dump({"settings": settings, "curves": results,
               "summary": summary}, f)
  option = (f", value features {chosen.value_features}"
            if chosen.value_features else "")
  plot(results, f"{task}: {chosen.algorithm}, lr {lr:g}, entropy {beta:g} "
       f"{chosen.entropy_mode}\n{FLAGS.walks_per_update} walk(s) per "
       f"update{option}; "
       "mean and min-max over replicas", os.path.join(out, "best_reward.png"))
  for form, s in summary.items():
    print(form, json.dumps(s))
  print(f"wrote {out}/curves.json and {out}/best_reward.png")


HELP_GROUPS = (
    help_lib.Group("experiment", ["task", "forms", "replicas", "trials",
                                  "spaces_dir", "out"]),
    help_lib.Group("search", ["walks_per_update", "seed"]),
    help_lib.Group("algorithm", [
        settings_lib.flag_name(AlgorithmSettings, name)
        for name in settings_lib.options(AlgorithmSettings)]),
)


def run():
  """Entry point (python -m graph_nas.experiment): --help prints its flags
  and exits 0."""
  help_lib.run_command(main, HELP_GROUPS, __doc__, "graph_nas.experiment",
                       "--task=TASK [flags]")


if __name__ == "__main__":
  run()
