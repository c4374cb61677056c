"""Per-child fixed cost and steady throughput of the child trainer.

A search trains many short-lived children, so what a child costs besides
its steady training steps (build, trace, first step) adds up. This script
trains children of a CPU-sized CIFAR-10 child (protos/cifar_cpu.textproto's
kind: stem stride 2, ~3-4 M multiply-adds) with graph_nas.child.trainer,
one seed per child as in a real search, and the same model with a plain
Keras ``compile`` + ``fit`` on in-memory tensors (normalised float32, no
augmentation: the cheapest input Keras can get), side by side in one
process, alternating, so that load from other processes hits both alike.

Printed per variant (medians over the children):
  fixed_s      build + first step (with its trace), i.e. what a child costs
               before steady training (fit: model build + compile + the
               first call of fit with its trace)
  images/s     steady training throughput after the first step
  eval_s       evaluation of --eval_examples images (with its trace)
and the process's user / sys CPU time over the whole run.

  python -m benchmarks.child_cost                 # ~3 min on 2 cores
  python -m benchmarks.child_cost --children=5 --steps=120

Before/after: `--old_tree=DIR` also measures the trainer of an older
checkout (graph_nas.train.train_child, before the child trainer existed),
imported as graph_nas_old and run in the same loop (one child of each
variant in turn), on the same child, budget and per-child seeds:

  git worktree add /tmp/before 78ccaca
  python -m benchmarks.child_cost --old_tree=/tmp/before
"""

import argparse
import os
import pathlib
import resource
import statistics
import sys
import time

from benchmarks import options

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A CPU-sized child: stem stride 2, four layers, head 320 (3.4 M MAdds).
CPU_CHILD = {
    "stem_filters": 16, "stem_stride": 2, "head_filters": 320,
    "layers": [
        {"kernel_size": 3, "filters": 16, "repeats": 1, "expand_ratio": 1,
         "se_ratio": 0.25, "activation": "relu", "stride": 1},
        {"kernel_size": 3, "filters": 32, "repeats": 2, "expand_ratio": 3,
         "se_ratio": 0.25, "activation": "swish", "stride": 2},
        {"kernel_size": 5, "filters": 48, "repeats": 2, "expand_ratio": 3,
         "se_ratio": 0.0, "activation": "swish", "stride": 1},
        {"kernel_size": 3, "filters": 64, "repeats": 1, "expand_ratio": 6,
         "se_ratio": 0.25, "activation": "relu", "stride": 2},
    ]}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--children", type=options.at_least(1), default=4,
                      help="children measured per variant (after one "
                      "warm-up child)")
  parser.add_argument("--steps", type=options.at_least(2), default=100,
                      help="training steps per child")
  parser.add_argument("--batch_size", type=options.at_least(1), default=64,
                      help="images per training step")
  parser.add_argument("--eval_examples", type=options.at_least(1),
                      default=1000, help="held-out images of each "
                      "evaluation")
  parser.add_argument("--data_dir", default=None,
                      help="tfds data folder (default: as graph_nas.child.data "
                      "resolves it)")
  parser.add_argument("--old_tree", default=None,
                      help="an older checkout whose graph_nas.train to "
                      "measure too")
  args = parser.parse_args()

  import keras
  import numpy as np
  import tensorflow as tf
  from graph_nas import child
  from graph_nas.child import (trainer as child_trainer, data, settings as train_settings)

  settings = train_settings.TrainSettings(
      data_dir=args.data_dir, train_examples=args.steps * args.batch_size,
      eval_examples=args.eval_examples, batch_size=args.batch_size,
      steps=args.steps, progress_every_s=0)
  trainer = child_trainer.ChildTrainer(settings, child.build_child,
                                       flops_fn=child.count_flops)
  trainer.prepare()
  info = trainer.info
  # The fit reference: the same images, normalised, in memory.
  images = (tf.cast(trainer._train_data.images, tf.float32) -  # pylint: disable=protected-access
            np.array(info.mean, np.float32)) / np.array(info.std,
                                                        np.float32)
  labels = trainer._train_data.labels  # pylint: disable=protected-access
  model = child.build_child(CPU_CHILD)
  print(f"child: {child.count_flops(model) / 1e6:.2f} M multiply-adds, "
        f"{model.count_params()} params; {args.steps} steps of "
        f"{args.batch_size}; data read in {trainer.data_seconds:.1f}s")

  class Timer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
      self.begin = time.perf_counter()
      self.first = None

    def on_train_batch_end(self, batch, logs=None):
      if self.first is None:
        self.first = time.perf_counter()

    def on_train_end(self, logs=None):
      self.end = time.perf_counter()

  def fit_child(seed):
    t0 = time.perf_counter()
    keras.utils.set_random_seed(seed)
    m = child.build_child(CPU_CHILD)
    m.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9,
                                             nesterov=True),
              loss=keras.losses.SparseCategoricalCrossentropy(
                  from_logits=True), metrics=["accuracy"])
    timer = Timer()
    m.fit(images, labels, batch_size=args.batch_size, epochs=1, verbose=0,
          shuffle=True, callbacks=[timer])
    fixed = timer.first - t0
    rate = (args.steps - 1) * args.batch_size / (timer.end - timer.first)
    return fixed, rate

  rows = {"child_trainer": [], "keras_fit": []}
  usage = {"child_trainer": [0.0, 0.0], "keras_fit": [0.0, 0.0]}
  old = None
  if args.old_tree:
    old_train, old_child = _import_old(args.old_tree)
    old_settings = old_train.TrainSettings(
        data_dir=data.resolve_data_dir(args.data_dir)[0],
        train_examples=args.steps * args.batch_size,
        eval_examples=args.eval_examples, batch_size=args.batch_size,
        steps=args.steps)
    old = "old train_child"
    rows[old], usage[old] = [], [0.0, 0.0]
  for i in range(args.children + 1):  # the first of each: warm-up
    seed = 1000 + i
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    result = trainer.train(CPU_CHILD, seed)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    fixed, rate = fit_child(seed)
    r2 = resource.getrusage(resource.RUSAGE_SELF)
    if old:
      old_result = old_train.train_child(old_child.build_child, CPU_CHILD,
                                         old_settings, seed=seed)
      r3 = resource.getrusage(resource.RUSAGE_SELF)
    if result.status != "ok":
      sys.exit(f"child failed: {result.reason}")
    m = result.metrics
    if i == 0:
      continue
    if old:
      o = old_result.metrics
      rows[old].append((o["build_s"] + o["first_step_s"], o["images_per_s"],
                        o["eval_s"], o["build_s"], o["first_step_s"]))
      usage[old][0] += r3.ru_utime - r2.ru_utime
      usage[old][1] += r3.ru_stime - r2.ru_stime
    rows["child_trainer"].append((m["build_s"] + m["first_step_s"],
                                  m["images_per_s"], m["eval_s"],
                                  m["build_s"], m["first_step_s"]))
    rows["keras_fit"].append((fixed, rate, float("nan"), float("nan"),
                              float("nan")))
    for name, a, b in (("child_trainer", r0, r1), ("keras_fit", r1, r2)):
      usage[name][0] += b.ru_utime - a.ru_utime
      usage[name][1] += b.ru_stime - a.ru_stime
  print(f"\n{args.children} children per variant (after one warm-up), "
        "medians:")
  print("| variant | fixed cost (s) | build (s) | first step (s) | steady "
        "images/s | eval (s) | user CPU (s) | sys CPU (s) |")
  print("|---|---|---|---|---|---|---|---|")
  for name, values in rows.items():
    med = [statistics.median(v[k] for v in values) for k in range(5)]
    print(f"| {name} | {med[0]:.2f} | {med[3]:.2f} | {med[4]:.2f} | "
          f"{med[1]:.0f} | {med[2]:.2f} | {usage[name][0]:.1f} | "
          f"{usage[name][1]:.1f} |")
  ratio = (statistics.median(v[1] for v in rows["child_trainer"]) /
           statistics.median(v[1] for v in rows["keras_fit"]))
  print(f"\nthroughput ratio child_trainer / keras_fit: {ratio:.2f}x")


def _import_old(tree):
  """The older checkout's package, imported as graph_nas_old."""
  import importlib  # pylint: disable=import-outside-toplevel
  import importlib.util  # pylint: disable=import-outside-toplevel
  import re  # pylint: disable=import-outside-toplevel
  import shutil  # pylint: disable=import-outside-toplevel
  import tempfile  # pylint: disable=import-outside-toplevel
  root = pathlib.Path(tempfile.mkdtemp())
  shutil.copytree(pathlib.Path(tree) / "graph_nas", root / "graph_nas_old")
  for path in (root / "graph_nas_old").rglob("*.py"):
    text = path.read_text()
    path.write_text(re.sub(r"\bgraph_nas\b(?!_old)", "graph_nas_old", text))
  # The package by its path (sys.path untouched); its submodules import
  # through it.
  package = root / "graph_nas_old"
  spec = importlib.util.spec_from_file_location(
      "graph_nas_old", package / "__init__.py",
      submodule_search_locations=[str(package)])
  module = importlib.util.module_from_spec(spec)
  sys.modules["graph_nas_old"] = module
  spec.loader.exec_module(module)
  return (importlib.import_module("graph_nas_old.train"),
          importlib.import_module("graph_nas_old.child"))


if __name__ == "__main__":
  main()
