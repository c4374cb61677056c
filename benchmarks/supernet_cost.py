"""What would a weight-sharing supernet cost on this CPU? Its widest child.

  python -m benchmarks.supernet_cost         # ~5 min on 2 cores at load 11

A supernet over protos/cifar_cpu.textproto whose choices are masked runs
the widest child of the space at every step (every layer, the widest
filters, the largest kernel and expansion, squeeze-and-excite on); one
trained single-path (SPOS, FBNet-style sampling) runs one sampled child
per step. This script measures both per-step costs with the package's own
trainer (graph_nas.child.trainer, the README demo's recipe: batch 32, SGD
lr 0.1, no augmentation, on the first 5,120 CIFAR-10 training images;
launch/cifar_cpu_demo.sh), in the same process, alternating the two
children over --rounds rounds so the machine's load hits both alike:

- the widest child: the walk that takes, at every vertex, the action
  toward the longest rest of the walk (one more layer) and then the
  largest value (the last of non-numeric ones); checked to have at least
  the multiply-adds of every one of --samples uniform random walks and of
  every walk that differs from it in one decision
  (graph_nas.child.estimate_cost, no training);
- the median child: of those random walks, the one whose multiply-adds
  are the median.

Each child trains --steps steps (the first step, with its tracing, is
timed apart), is scored by the trainer on --eval_examples held-out images,
and its forward pass (inference mode, batches of 32) is timed on
--forward_images images: what scoring a candidate through a trained
supernet costs per image. Prints and writes
benchmarks/results/supernet_cost/supernet_cost.md: images/s and steps/s of
each, the ratio widest / median of each round and their median, and the
minutes a supernet would take for N epochs of the demo's 5,120 images.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

from benchmarks import options

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "supernet_cost"
DEMO_IMAGES = 5120  # the demo's child training set (launch/cifar_cpu_demo.sh)
DEMO_BATCH = 32
DEMO_EVAL = 2000  # the demo's held-out images (--eval_examples=2000)
DEMO_SEARCH_MIN = 8.8  # the demo's search time (issue 29: 50 architectures)
EPOCHS = (1, 10, 30, 100)  # supernet training budgets shown


def longest_rest(sp):
  """Per vertex, the most steps from it to a terminal (acyclic space)."""
  memo = {}

  def rest(v):
    if v not in memo:
      memo[v] = 0 if sp.terminal[v] else 1 + max(
          rest(e.target) for e in sp.edges[v])
    return memo[v]

  return [rest(v) for v in range(len(sp.vertex_names))]


def widest_walk(sp):
  """The walk taking the action toward the longest rest, then the largest
  value (the last action where values are not numbers)."""
  if sp.is_cyclic:
    sys.exit(f"{sp.source}: a cyclic space has no longest walk")
  rest = longest_rest(sp)

  def key(pair):
    a, e = pair
    numeric = isinstance(e.value, (int, float)) and not isinstance(
        e.value, bool)
    return (rest[e.target], e.value if numeric else 0, a)

  cur, actions = sp.start, []
  while not sp.terminal[cur]:
    a, e = max(enumerate(sp.edges[cur]), key=key)
    actions.append(a)
    cur = e.target
  return tuple(actions)


def flops_of(sp, actions):
  """Multiply-adds of a walk's child, or None (not a complete walk)."""
  from graph_nas import child
  from graph_nas.errors import GraphNasError
  try:
    return child.estimate_cost(sp.decode(actions))["flops"]
  except GraphNasError:
    return None


def children(sp, samples, seed):
  """(widest, median, facts): each {walk, config, flops, params}."""
  import numpy as np
  from graph_nas import child
  rng = np.random.default_rng(seed)
  drawn = []
  for _ in range(samples):
    walk = sp.sample_random(rng)
    if not walk.truncated:
      drawn.append((flops_of(sp, walk.actions), walk.actions))
  drawn.sort()
  flops = [f for f, _ in drawn]
  median_walk = drawn[len(drawn) // 2][1]
  wide = widest_walk(sp)
  wide_flops = flops_of(sp, wide)
  # No single changed decision (the rest of the walk kept) adds cost.
  neighbours, beaten = 0, []
  for t, a in enumerate(wide):
    cur = sp.start
    for b in wide[:t]:
      cur = int(sp.next_vertex[cur, b])
    for alt in range(int(sp.num_actions[cur])):
      if alt == a:
        continue
      f = flops_of(sp, wide[:t] + (alt,) + wide[t + 1:])
      if f is not None:
        neighbours += 1
        if f > wide_flops:
          beaten.append((t, alt, f))
  if max(flops) > wide_flops or beaten:
    sys.exit(f"the longest-largest walk ({wide_flops} multiply-adds) is not "
             f"the widest: sampled max {max(flops)}, neighbours {beaten}")

  def describe(walk):
    config = sp.decode(walk)
    cost = child.estimate_cost(config)
    return {"walk": list(walk), "config": config, "flops": cost["flops"],
            "params": cost["trainable_params"],
            "blocks": [b.encode() for b in child.blocks_from_config(config)]}

  facts = {"samples": samples, "complete_walks": len(flops),
           "flops_min": flops[0], "flops_median": flops[len(flops) // 2],
           "flops_mean": float(np.mean(flops)), "flops_max_sampled": flops[-1],
           "neighbours_checked": neighbours}
  return describe(wide), describe(median_walk), facts


def forward_rate(trainer, model, n, seed):
  """Images/s of the trained model's forward pass (inference mode, batches
  of 32, traced once before timing) on n training images."""
  import tensorflow as tf
  images, _ = trainer.sample_batch(n, seed)
  forward = tf.function(lambda x: model(x, training=False))
  batches = [images[i:i + DEMO_BATCH] for i in range(0, n, DEMO_BATCH)]
  forward(batches[0]).numpy()
  start = time.perf_counter()
  for x in batches:
    forward(x).numpy()
  return n / (time.perf_counter() - start)


def measure(trainer, config, seed, forward_images):
  """One training of `steps` steps, its evaluation, then the trained
  child's forward rate: the timings."""
  load = os.getloadavg()[0]
  result, model = trainer.train(config, seed, label="supernet_cost",
                                keep_model=True)
  if not result.ok:
    sys.exit(f"training failed: {result.reason}")
  m = result.metrics
  return {"images_per_s": m["images_per_s"],
          "steps_per_s": m["images_per_s"] / DEMO_BATCH,
          "first_step_s": m["first_step_s"], "build_s": m["build_s"],
          "eval_s": m["eval_s"], "steps": m["steps_trained"],
          "forward_images_per_s": forward_rate(trainer, model,
                                               forward_images, seed),
          "val_accuracy": m["val_accuracy"], "load_1min": load}


def estimate(wide_sps, median_sps, forward_ips):
  """Minutes of supernet training per budget, and per-candidate scoring."""
  steps_per_epoch = DEMO_IMAGES // DEMO_BATCH
  rows = []
  for n in EPOCHS:
    steps = n * steps_per_epoch
    rows.append({"epochs": n, "steps": steps,
                 "masked_min": steps / wide_sps / 60,
                 "single_path_min": steps / median_sps / 60})
  # A candidate scored with inherited weights: BN statistics recomputed on
  # 10 training batches, then the held-out images (forward only, at the
  # median child's forward rate; a graph traced once, not per candidate).
  score_s = (10 * DEMO_BATCH + DEMO_EVAL) / forward_ips
  return rows, score_s


def fmt_table(header, rows):
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join(" --- " for _ in header) + "|"]
  lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
  return "\n".join(lines)


def report(out, args, wide, median, facts, runs, command):
  ratios = [w["steps_per_s"] / m["steps_per_s"]
            for m, w in zip(runs["median"], runs["widest"])]
  ratio = statistics.median(ratios)
  med = {k: statistics.median(r[k] for r in runs["median"])
         for k in runs["median"][0]}
  wid = {k: statistics.median(r[k] for r in runs["widest"])
         for k in runs["widest"][0]}
  fwd_ips = med["forward_images_per_s"]
  rows, score_s = estimate(wid["steps_per_s"], med["steps_per_s"], fwd_ips)
  loads = [r["load_1min"] for k in runs for r in runs[k]]
  text = [
      "# Supernet cost on this CPU: the widest child vs a median child",
      "",
      f"Command: `{command}` (benchmarks/supernet_cost.py; the design note "
      "is benchmarks/supernet.md).",
      "",
      f"Machine: {os.cpu_count()} CPU cores, **shared with other agents** "
      f"(1-minute load average {min(loads):.1f}-{max(loads):.1f} during the "
      f"runs); {platform.python_version()}, TF {args.tf_version}. Absolute "
      "timings are noisy; the ratio is measured in the same process, the "
      "two children alternating, and is the figure to use.",
      "",
      "Recipe: the README demo's child training (launch/cifar_cpu_demo.sh: "
      "batch 32, SGD lr 0.1, no augmentation, the first 5,120 CIFAR-10 "
      f"training images), {args.steps} steps per training, "
      f"{args.rounds} rounds; images/s excludes the first step (tracing). "
      f"Then the package's evaluation of {args.eval_examples} held-out "
      "images (tracing included) and, timed apart, the trained child's "
      f"forward pass over {args.forward_images} images (batches of 32, "
      "traced before timing).",
      "",
      "## The two children",
      "",
      fmt_table(["child", "multiply-adds", "trainable params", "layers"], [
          ["widest", f"{wide['flops'] / 1e6:.1f} M", f"{wide['params']:,}",
           " ".join(wide["blocks"])],
          ["median", f"{median['flops'] / 1e6:.1f} M",
           f"{median['params']:,}", " ".join(median["blocks"])]]),
      "",
      f"Of {facts['samples']:,} uniform random walks "
      f"({facts['complete_walks']:,} complete), multiply-adds min "
      f"{facts['flops_min'] / 1e6:.2f} M, median "
      f"{facts['flops_median'] / 1e6:.2f} M, mean "
      f"{facts['flops_mean'] / 1e6:.2f} M, max "
      f"{facts['flops_max_sampled'] / 1e6:.2f} M; the widest walk (longest, "
      "largest value at every choice) has more than all of them and than "
      f"each of its {facts['neighbours_checked']} one-decision neighbours.",
      "",
      "## Training throughput (median over rounds)",
      "",
      fmt_table(["child", "train images/s", "steps/s", "first step s",
                 "build s", f"eval {args.eval_examples} s",
                 "forward images/s"], [
          [name, f"{x['images_per_s']:.1f}", f"{x['steps_per_s']:.2f}",
           f"{x['first_step_s']:.2f}", f"{x['build_s']:.2f}",
           f"{x['eval_s']:.2f}", f"{x['forward_images_per_s']:.0f}"]
          for name, x in (("widest", wid), ("median", med))]),
      "",
      f"**Ratio widest / median steps/s: {ratio:.3f}** (rounds: "
      + ", ".join(f"{r:.3f}" for r in ratios) + f"); the widest child's "
      f"step costs {1 / ratio:.1f}x the median child's, for "
      f"{wide['flops'] / median['flops']:.1f}x its multiply-adds.",
      "",
      "## What a supernet would cost (the demo's 5,120 images = "
      f"{DEMO_IMAGES // DEMO_BATCH} steps an epoch)",
      "",
      "Masked (every choice's weights active: a step costs at least the "
      "widest child's) and single-path (one sampled child a step, SPOS / "
      "FBNet-style: a step costs about the median child's, but each path "
      "sees a small share of the steps), against the demo's "
      f"~{DEMO_SEARCH_MIN:.0f} minutes of search:",
      "",
      fmt_table(["epochs", "steps", "masked, min", "single-path, min"],
                [[r["epochs"], r["steps"], f"{r['masked_min']:.1f}",
                  f"{r['single_path_min']:.1f}"] for r in rows]),
      "",
      "Scoring one candidate with inherited weights (BN statistics on 10 "
      f"training batches + the demo's {DEMO_EVAL:,} held-out images, "
      "forward only, at the median child's forward rate "
      f"{fwd_ips:.0f} images/s): ~{score_s:.1f} s, so "
      f"~{600 / score_s:.0f} candidates in 10 minutes, if the supernet is "
      "one graph traced once; building and tracing each sub-network as its "
      f"own Keras model adds ~{med['build_s'] + med['first_step_s']:.0f} s "
      "a candidate (build + first step above).",
      "",
      "## Raw",
      "",
      "```json",
      json.dumps({"widest": wide, "median": median, "facts": facts,
                  "runs": runs, "ratios": ratios}, indent=1, sort_keys=True),
      "```",
      ""]
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text("\n".join(text))
  print("\n".join(text[:text.index("## Raw")]))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=options.at_least(1), default=40,
                      help="training steps per child per round")
  parser.add_argument("--rounds", type=options.at_least(1), default=2,
                      help="rounds of the two children, alternating")
  parser.add_argument("--samples", type=options.at_least(1), default=20000,
                      help="uniform random walks for the median child")
  parser.add_argument("--eval_examples", type=options.at_least(1),
                      default=320,
                      help="held-out images of the package's evaluation")
  parser.add_argument("--forward_images", type=options.at_least(1),
                      default=640,
                      help="images of the timed forward pass")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the walks and of round 0's training "
                      "(round r: seed + r)")
  parser.add_argument("--data_dir", default=None,
                      help="tfds data folder (default: as graph_nas.child.data "
                      "resolves it)")
  parser.add_argument("--out", default=str(RESULTS / "supernet_cost.md"),
                      help="the results page")
  args = parser.parse_args()

  import tensorflow as tf
  from graph_nas import child, space
  from graph_nas.child import trainer as child_trainer
  from graph_nas.child.settings import TrainSettings
  args.tf_version = tf.__version__

  sp = space.load(str(ROOT / "protos" / "cifar_cpu.textproto"))
  wide, median, facts = children(sp, args.samples, args.seed)
  print(f"widest {wide['flops']:,} multiply-adds, median "
        f"{median['flops']:,}", flush=True)
  settings = TrainSettings(
      data_dir=args.data_dir, train_examples=DEMO_IMAGES, steps=args.steps,
      batch_size=DEMO_BATCH, learning_rate=0.1, augment=False,
      eval_examples=args.eval_examples, progress_every_s=0)
  trainer = child_trainer.ChildTrainer(
      settings, child.build_child, flops_fn=child.count_flops,
      params_fn=child.count_params)
  runs = {"median": [], "widest": []}
  for r in range(args.rounds):
    for name, c in (("median", median), ("widest", wide)):
      t0 = time.perf_counter()
      runs[name].append(measure(trainer, c["config"], args.seed + r,
                                args.forward_images))
      print(f"round {r} {name}: {runs[name][-1]['images_per_s']:.1f} "
            f"images/s ({time.perf_counter() - t0:.0f} s)", flush=True)
  command = "python -m benchmarks.supernet_cost" + "".join(
      f" {a}" for a in sys.argv[1:])
  report(pathlib.Path(args.out), args, wide, median, facts, runs, command)


if __name__ == "__main__":
  main()
