"""Training speed of a graph-nas child vs Keras' MobileNetV2 (measured only).

  python benchmarks/child_speed.py [--batch_size=128] [--steps=10]

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

Nothing is asserted; results go to benchmarks/README_child.md by hand.
"""

import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from graph_nas import child  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 128, "Images per training step.")
flags.DEFINE_integer("steps", 10, "Timed training steps per model.")
flags.DEFINE_integer("warmup", 3, "Untimed training steps before timing.")
flags.DEFINE_float("alpha", 0.35, "MobileNetV2 width multiplier.")
flags.DEFINE_string("preset", "cifar-default", "graph_nas.child preset.")
flags.DEFINE_integer("seed", 0, "Seed of the random data and weights.")


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


def _fit_seconds(model, x, y, steps):
  """Wall time of model.fit over `steps` batches (one epoch, no callbacks)."""
  ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(
      FLAGS.batch_size).repeat().prefetch(2)
  start = time.perf_counter()
  model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
  return time.perf_counter() - start


def _throughput(model, x, y):
  _fit_seconds(model, x, y, FLAGS.warmup)
  seconds = _fit_seconds(model, x, y, FLAGS.steps)
  return FLAGS.steps * FLAGS.batch_size / seconds


def main(argv):
  del argv
  keras.utils.set_random_seed(FLAGS.seed)
  kwargs = child.preset(FLAGS.preset)
  x, y = _data(4 * FLAGS.batch_size, kwargs["input_shape"][0], FLAGS.seed)

  # Build + compile time of a fresh child, then its first fit step.
  start = time.perf_counter()
  model = _compile(child.build_child(**kwargs))
  build_s = time.perf_counter() - start
  first_step_s = _fit_seconds(model, x, y, 1)
  child_ips = _throughput(model, x, y)
  child_flops = child.count_flops(model)
  child_params = child.count_params(model, trainable_only=True)
  jit = getattr(model, "jit_compile", "?")
  keras.backend.clear_session()

  mobilenet = _compile(keras.applications.MobileNetV2(
      input_shape=kwargs["input_shape"], alpha=FLAGS.alpha, weights=None,
      classes=10, classifier_activation=None))
  mobilenet_ips = _throughput(mobilenet, x, y)
  mobilenet_flops = child.count_flops(mobilenet)
  mobilenet_params = child.count_params(mobilenet, trainable_only=True)

  blocks = [b.encode() for b in child.blocks_from_config(kwargs["config"])]
  print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores visible, "
        f"{platform.python_version()}, TF {tf.__version__}, "
        f"Keras {keras.__version__}, GPUs: "
        f"{len(tf.config.list_physical_devices('GPU'))}, jit_compile={jit}")
  print(f"child {FLAGS.preset}: {' '.join(blocks)}")
  print(f"batch {FLAGS.batch_size}, 32x32 random data, {FLAGS.warmup} warm-up "
        f"+ {FLAGS.steps} timed fit steps, SGD momentum")
  print()
  rows = [
      ("model", "train images/s", "MACs/image", "trainable params"),
      (f"child ({FLAGS.preset})", f"{child_ips:.1f}",
       f"{child_flops / 1e6:.1f}M", f"{child_params:,}"),
      (f"MobileNetV2 alpha={FLAGS.alpha}", f"{mobilenet_ips:.1f}",
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
  steady_s = FLAGS.batch_size / child_ips
  print(f"child first fit step (fresh model, tracing included): "
        f"{first_step_s:.2f} s = {steady_s:.2f} s of a steady step + "
        f"{first_step_s - steady_s:.2f} s of one-off setup")
  print(f"forward multiply-adds per second of training: child "
        f"{child_ips * child_flops / 1e9:.2f} G/s, MobileNetV2 "
        f"{mobilenet_ips * mobilenet_flops / 1e9:.2f} G/s")


if __name__ == "__main__":
  app.run(main)
