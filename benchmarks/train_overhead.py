"""Per-child fixed cost and steady throughput of graph_nas.train's trainers.

A search trains thousands of short-lived children, so what a child costs
besides its training steps (build, trace, first step, evaluation trace) adds
up. This benchmark trains children on CIFAR-10 with two step budgets, S1 and
S2, and fits wall time = fixed + steps * per_step:

  per_step   = (T(S2) - T(S1)) / (S2 - S1)     (medians over the children)
  fixed cost = T(S1) - S1 * per_step
  steady images/s = batch_size / per_step

and, less sensitive to load from other processes, per run of S2 steps:

  steady images/s = the rate of the steps after the first call (measured
                    inside the run: metrics["images_per_s"])
  fixed cost = T - S2 * batch_size / (steady images/s)

(medians over the children). The machine this was written on has 2 CPU
cores shared with other jobs, so wall times swing with their load; the
same regression on the process's CPU time (time.process_time, all
threads) barely does, and is printed too: fixed CPU-seconds and images per
CPU-second. T covers the whole `train_child` call, so the fixed cost is
everything a search pays per child: model build, optimizer, trace and
first step, the evaluation on `--eval_examples` images (with its trace),
failure checks. The trainer-reported split (build / first call / eval) is
printed too.

Variants: "fit-spe1" (model.fit + model.evaluate with Keras' default
steps_per_execution=1), "fit" (the same with --steps_per_execution),
"fast-kerasopt" (the fast trainer with the Keras optimizer) and "fast" (the
fast trainer with its fused optimizer: the default). Their children run
interleaved in one process, so load from other processes hits all variants
alike; one warm-up child per variant (decoding CIFAR-10 into memory,
first-use imports) is not counted.

  python benchmarks/train_overhead.py                     # all variants
  python benchmarks/train_overhead.py --model=child \\
      --child_preset=cifar-default                      # graph_nas.child

Measured, not asserted: see benchmarks/README_train.md.
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tfds"


def small_cnn(config, input_shape=(32, 32, 3), num_classes=10):
  """Three conv-BN-ReLU-pool blocks, global pooling, a dense head."""
  import keras  # pylint: disable=import-outside-toplevel
  width = config.get("width", 32)
  inputs = keras.Input(input_shape)
  x = inputs
  for i in range(config.get("blocks", 3)):
    x = keras.layers.Conv2D(width * 2**i, 3, padding="same",
                            use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def mbconv_net(config, input_shape=(32, 32, 3), num_classes=10):
  """A small MnasNet-like stand-in for graph_nas.child: MBConv + SE blocks.

  config: {"blocks": [[kernel, filters, expand, stride, se_ratio], ...]}.
  """
  import keras  # pylint: disable=import-outside-toplevel
  layers = keras.layers
  blocks = config.get("blocks", [[3, 16, 1, 1, 0.25], [3, 24, 3, 2, 0.25],
                                 [5, 24, 3, 1, 0.25], [3, 40, 6, 2, 0.25],
                                 [5, 40, 6, 1, 0.25], [3, 80, 6, 2, 0.25]])
  inputs = keras.Input(input_shape)
  x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
  x = layers.BatchNormalization(momentum=0.9)(x)
  x = layers.Activation("swish")(x)
  for kernel, filters, expand, stride, se in blocks:
    shortcut, channels = x, x.shape[-1]
    if expand != 1:
      x = layers.Conv2D(channels * expand, 1, use_bias=False)(x)
      x = layers.BatchNormalization(momentum=0.9)(x)
      x = layers.Activation("swish")(x)
    x = layers.DepthwiseConv2D(kernel, stride, padding="same",
                               use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Activation("swish")(x)
    if se:
      squeeze = layers.GlobalAveragePooling2D(keepdims=True)(x)
      squeeze = layers.Conv2D(max(1, int(channels * se)), 1,
                              activation="swish")(squeeze)
      squeeze = layers.Conv2D(x.shape[-1], 1,
                              activation="sigmoid")(squeeze)
      x = layers.Multiply()([x, squeeze])
    x = layers.Conv2D(filters, 1, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    if stride == 1 and channels == filters:
      x = layers.Add()([x, shortcut])
  x = layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, layers.Dense(num_classes)(x))


def _model_fn(name):
  if name == "small_cnn":
    return small_cnn
  if name == "mbconv":
    return mbconv_net
  from graph_nas import child  # pylint: disable=import-outside-toplevel
  return child.build_child


def _config(args):
  """The architecture config: --child_preset's, else --child_config."""
  if args.child_preset:
    from graph_nas import child  # pylint: disable=import-outside-toplevel
    return child.preset(args.child_preset)["config"]
  return json.loads(args.child_config)


VARIANTS = {
    # name: TrainSettings overrides
    "fit-spe1": dict(trainer="fit", steps_per_execution=1),
    "fit": dict(trainer="fit"),
    "fast-kerasopt": dict(trainer="fast", fused_optimizer=False),
    "fast": dict(trainer="fast"),
}


def _run(args):
  """Runs all variants' children interleaved in this process."""
  sys.path.insert(0, str(ROOT))
  from graph_nas import train  # pylint: disable=import-outside-toplevel
  model_fn = _model_fn(args.model)
  config = _config(args)
  settings = train.TrainSettings(
      data_dir=args.data_dir, batch_size=args.batch_size,
      train_examples=args.train_examples, eval_examples=args.eval_examples,
      steps_per_execution=args.steps_per_execution)
  variants = args.variants.split(",")
  for name in variants:
    if name not in VARIANTS:
      sys.exit(f"unknown variant {name}; one of {', '.join(VARIANTS)}")
  runs = {name: [] for name in variants}

  def child(name, steps):
    t0, c0 = time.perf_counter(), time.process_time()
    result = train.train_child(model_fn, config, settings, steps=steps,
                               **VARIANTS[name])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if not result.ok:
      sys.exit(f"{name}: child failed: {result.reason}\n{result.details}")
    return dict(result.metrics, wall_s=wall, cpu_s=cpu)

  for name in variants:  # warm-up: CIFAR-10 decode, first-use imports
    child(name, args.steps[0])
  for i in range(args.children):
    for steps in args.steps:
      for name in variants:
        m = child(name, steps)
        keep = ("build_s", "first_step_s", "train_s", "eval_s", "wall_s",
                "cpu_s", "images_per_s", "params")
        runs[name].append({"steps": steps, **{k: m.get(k) for k in keep}})
        print(f"{name:14} steps={steps:4d} " + " ".join(
            f"{k}={m.get(k, float('nan')):.2f}" for k in keep[:-1]),
              flush=True)
  return runs


def _summary(variant, runs, steps, batch_size):
  """Fixed cost and steady throughput of one variant, three ways."""
  s1, s2 = steps
  big = [r for r in runs if r["steps"] == s2]
  med = lambda k: statistics.median(r[k] for r in big)  # noqa: E731

  def regression(key):
    t1 = statistics.median(r[key] for r in runs if r["steps"] == s1)
    t2 = statistics.median(r[key] for r in runs if r["steps"] == s2)
    per_step = (t2 - t1) / (s2 - s1)
    return t1 - s1 * per_step, batch_size / per_step, t1, t2

  fixed_cpu, images_per_cpu_s, _, _ = regression("cpu_s")
  fixed_wall, images_per_s_wall, t1, t2 = regression("wall_s")
  # Per run: the steady rate measured inside the run (steps after the first
  # call) prices the run's steps; the rest of its wall time is fixed cost.
  fixed_run = statistics.median(
      r["wall_s"] - r["steps"] * batch_size / r["images_per_s"] for r in big)
  return {
      "variant": variant, "params": runs[0]["params"],
      "fixed_cpu_s": fixed_cpu, "images_per_cpu_s": images_per_cpu_s,
      "fixed_s": fixed_run, "images_per_s": med("images_per_s"),
      "fixed_s_regression": fixed_wall,
      "images_per_s_regression": images_per_s_wall,
      "build_s": med("build_s"), "first_step_s": med("first_step_s"),
      "eval_s": med("eval_s"), f"wall_s@{s1}": t1, f"wall_s@{s2}": t2,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--variants", default="fit-spe1,fit,fast-kerasopt,fast",
                      help=f"comma-separated, of {', '.join(VARIANTS)}")
  parser.add_argument("--model", default="mbconv",
                      choices=["small_cnn", "mbconv", "child"])
  parser.add_argument("--child_config", default="{}",
                      help="JSON config given to the model builder")
  parser.add_argument("--child_preset",
                      help="with --model=child: a graph_nas.child preset's "
                      "config, e.g. cifar-default")
  parser.add_argument("--children", type=int, default=4,
                      help="children per budget and variant")
  parser.add_argument("--steps", default="10,50",
                      help="the two step budgets S1,S2")
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--steps_per_execution", type=int, default=8)
  parser.add_argument("--train_examples", type=int, default=10000)
  parser.add_argument("--eval_examples", type=int, default=1000)
  parser.add_argument("--data_dir", default=str(DEFAULT_DATA))
  parser.add_argument("--json", help="write the runs and summary here")
  args = parser.parse_args()
  args.steps = [int(v) for v in args.steps.split(",")]
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  load_before = os.getloadavg()
  t0 = time.perf_counter()
  runs = _run(args)
  wall = time.perf_counter() - t0
  summaries = [_summary(v, r, args.steps, args.batch_size)
               for v, r in runs.items()]
  print(f"\nmodel={args.model} params={summaries[0]['params']} "
        f"batch={args.batch_size} steps={args.steps} "
        f"steps_per_execution={args.steps_per_execution} "
        f"children/budget={args.children} cpus={os.cpu_count()} "
        f"loadavg before/after={load_before[0]:.1f}/{os.getloadavg()[0]:.1f} "
        f"wall={wall:.0f}s")
  print("CPU: fixed CPU-s, images per CPU-s (regression on process CPU "
        "time)\nper run: fixed wall s, steady images/s (inside each run)\n"
        "regression: fixed wall s, images/s (regression on wall time)\n"
        "split: build, first call, eval (wall s, medians)")
  print(f"{'variant':14} | {'CPU':^15} | {'per run':^15} | "
        f"{'regression':^15} | {'split':^20}")
  for s in summaries:
    print(f"{s['variant']:14} | {s['fixed_cpu_s']:6.2f} "
          f"{s['images_per_cpu_s']:8.0f} | {s['fixed_s']:6.2f} "
          f"{s['images_per_s']:8.0f} | {s['fixed_s_regression']:6.2f} "
          f"{s['images_per_s_regression']:8.0f} | {s['build_s']:6.2f} "
          f"{s['first_step_s']:6.2f} {s['eval_s']:6.2f}")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump({"args": vars(args), "runs": runs, "summaries": summaries},
                f, indent=2)


if __name__ == "__main__":
  main()
