"""Training speed of a graph-nas child vs Keras' MobileNetV2 (measured only).

  python -m benchmarks.child_speed [--batch_size=128] [--steps=10]

Prints a table:
  * training throughput (images/s) of a mid-sized CIFAR-10 child (preset
    "cifar-default") and of keras.applications.MobileNetV2 (alpha 0.35,
    weights=None, 10 classes), both at 32x32 on random data, batch 128,
    timed over `steps` fit steps after `warmup` steps, in the same process;
    the ratio child / MobileNetV2;
  * the multiply-adds per image of both (graph_nas.child.count_flops), so the
    throughput can be read per FLOP;
  * the time to build and compile one child;
  * the first-step cost of `fit` on a fresh child (tracing included).

Nothing is asserted; results go to benchmarks/README_child.md and
benchmarks/results/child_speed/child_speed.md by hand.
"""

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import options  # noqa: E402
from graph_nas import child  # noqa: E402


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch_size", type=options.at_least(1), default=128,
                      help="images per training step")
  parser.add_argument("--steps", type=options.at_least(1), default=10,
                      help="timed training steps per model")
  parser.add_argument("--warmup", type=options.at_least(0), default=3,
                      help="untimed training steps before timing")
  parser.add_argument("--alpha", type=options.above(0.0), default=0.35,
                      help="MobileNetV2 width multiplier")
  parser.add_argument("--preset", default="cifar-default",
                      help="graph_nas.child preset")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the random data and weights")
  return parser.parse_args()


def _compile(model):
  model.compile(
      optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  return model


def _data(n, size, seed):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, size, size, 3)).astype(np.float32)
  y = rng.integers(0, 10, size=(n,)).astype(np.int32)
  return x, y


def _fit_seconds(model, x, y, steps, batch_size):
  """Wall time of model.fit over `steps` batches (one epoch, no callbacks)."""
  ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(
      batch_size).repeat().prefetch(2)
  start = time.perf_counter()
  model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
  return time.perf_counter() - start


def _throughput(model, x, y, args):
  _fit_seconds(model, x, y, args.warmup, args.batch_size)
  seconds = _fit_seconds(model, x, y, args.steps, args.batch_size)
  return args.steps * args.batch_size / seconds


def main():
  args = parse_args()
  keras.utils.set_random_seed(args.seed)
  kwargs = child.preset(args.preset)
  x, y = _data(4 * args.batch_size, kwargs["input_shape"][0], args.seed)

  # Build + compile time of a fresh child, then its first fit step.
  start = time.perf_counter()
  model = _compile(child.build_child(**kwargs))
  build_s = time.perf_counter() - start
  first_step_s = _fit_seconds(model, x, y, 1, args.batch_size)
  child_ips = _throughput(model, x, y, args)
  child_flops = child.count_flops(model)
  child_params = child.count_params(model, trainable_only=True)
  jit = getattr(model, "jit_compile", "?")
  keras.backend.clear_session()

  mobilenet = _compile(keras.applications.MobileNetV2(
      input_shape=kwargs["input_shape"], alpha=args.alpha, weights=None,
      classes=10, classifier_activation=None))
  mobilenet_ips = _throughput(mobilenet, x, y, args)
  mobilenet_flops = child.count_flops(mobilenet)
  mobilenet_params = child.count_params(mobilenet, trainable_only=True)

  blocks = [b.encode() for b in child.blocks_from_config(kwargs["config"])]
  print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores visible, "
        f"{platform.python_version()}, TF {tf.__version__}, "
        f"Keras {keras.__version__}, GPUs: "
        f"{len(tf.config.list_physical_devices('GPU'))}, jit_compile={jit}")
  print(f"child {args.preset}: {' '.join(blocks)}")
  print(f"batch {args.batch_size}, 32x32 random data, {args.warmup} warm-up "
        f"+ {args.steps} timed fit steps, SGD momentum")
  print()
  rows = [
      ("model", "train images/s", "MACs/image", "trainable params"),
      (f"child ({args.preset})", f"{child_ips:.1f}",
       f"{child_flops / 1e6:.1f}M", f"{child_params:,}"),
      (f"MobileNetV2 alpha={args.alpha}", f"{mobilenet_ips:.1f}",
       f"{mobilenet_flops / 1e6:.1f}M", f"{mobilenet_params:,}"),
      ("ratio child / MobileNetV2", f"{child_ips / mobilenet_ips:.3f}",
       f"{child_flops / mobilenet_flops:.2f}",
       f"{child_params / mobilenet_params:.2f}"),
  ]
  widths = [max(len(r[i]) for r in rows) for i in range(4)]
  for i, r in enumerate(rows):
    print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))
    if i == 0:
      print("-+-".join("-" * w for w in widths))
  print()
  print(f"child build + compile: {build_s:.2f} s")
  steady_s = args.batch_size / child_ips
  print(f"child first fit step (fresh model, tracing included): "
        f"{first_step_s:.2f} s = {steady_s:.2f} s of a steady step + "
        f"{first_step_s - steady_s:.2f} s of one-off setup")
  print(f"forward multiply-adds per second of training: child "
        f"{child_ips * child_flops / 1e9:.2f} G/s, MobileNetV2 "
        f"{mobilenet_ips * mobilenet_flops / 1e9:.2f} G/s")


if __name__ == "__main__":
  main()
