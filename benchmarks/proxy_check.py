"""Is the demo's cheap reward worth searching on? A rank-correlation check.

  python -m benchmarks.proxy_check          # ~20 min on 2 cores

For --archs random architectures of protos/cifar_cpu.textproto (uniform
random walks, fixed seed), the validation accuracy after the README demo's
child budget (5,120 images x 2 epochs) and after a 4x longer training
(20,480 images x 2 epochs; same batch, learning rate and recipe), on the
same 2,000 held-out images. Prints both and Spearman's rank correlation;
writes benchmarks/results/proxy_check/proxy_check.{json,png}.
"""

import argparse
import json
import os
import pathlib
import sys

from benchmarks import options

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "proxy_check"


def spearman(a, b):
  """Spearman's rho (average ranks for ties)."""
  import numpy as np  # pylint: disable=import-outside-toplevel

  def ranks(x):
    x = np.asarray(x, float)
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):
      r[x == v] = r[x == v].mean()
    return r

  ra, rb = ranks(a), ranks(b)
  return float(np.corrcoef(ra, rb)[0, 1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--archs", type=options.at_least(1), default=10,
                      help="random architectures to train")
  parser.add_argument("--seed", type=int, default=7,
                      help="seed of the random walks")
  parser.add_argument("--data_dir", default=None,
                      help="tfds data folder (default: as graph_nas.child.data "
                      "resolves it)")
  parser.add_argument("--partial", default=str(ROOT / "runs" /
                                               "proxy_check.json"),
                      help="accuracies measured so far (a rerun resumes)")
  args = parser.parse_args()

  import numpy as np
  from graph_nas import child, report, space
  from graph_nas.child import trainer as child_trainer
  from graph_nas.child.settings import TrainSettings

  sp = space.load(str(ROOT / "protos" / "cifar_cpu.textproto"))
  rng = np.random.default_rng(args.seed)
  configs = [sp.decode(sp.sample_random(rng).actions)
             for _ in range(args.archs)]
  common = dict(data_dir=args.data_dir, epochs=2, batch_size=32,
                learning_rate=0.1, augment=False, eval_examples=2000,
                progress_every_s=0)
  budgets = {"demo": TrainSettings(train_examples=5120, **common),
             "4x": TrainSettings(train_examples=20480, **common)}
  partial = pathlib.Path(args.partial)
  done = json.loads(partial.read_text()) if partial.exists() else {}
  if "configs" in done and done["configs"] != json.loads(
      json.dumps(configs)):
    sys.exit(f"{partial} holds other architectures: remove it or pass "
             "another --partial")
  acc = {name: [] for name in budgets}
  for name, settings in budgets.items():
    trainer = None
    for i, config in enumerate(configs):
      key = f"{name}/{i}"
      if key not in done:
        trainer = trainer or child_trainer.ChildTrainer(settings,
                                                        child.build_child)
        result = trainer.train(config, seed=100 + i)
        done[key] = result.metrics.get("val_accuracy", float("nan"))
        done["configs"] = configs
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(done))
        print(f"{name} arch {i}: {done[key]:.4f} "
              f"({result.metrics['total_s']:.0f}s)", flush=True)
      acc[name].append(done[key])
  rho = spearman(acc["demo"], acc["4x"])
  print("| arch | demo budget | 4x budget | layers |")
  print("|---|---|---|---|")
  for i, config in enumerate(configs):
    print(f"| {i} | {acc['demo'][i]:.4f} | {acc['4x'][i]:.4f} | "
          f"{report.architecture_text(config)} |")
  print(f"Spearman rank correlation: {rho:.3f} over {len(configs)} "
        "architectures")
  RESULTS.mkdir(parents=True, exist_ok=True)
  (RESULTS / "proxy_check.json").write_text(json.dumps(
      {"spearman": rho, "demo": acc["demo"], "4x": acc["4x"],
       "configs": configs}, indent=1))
  plt = report._pyplot()  # pylint: disable=protected-access
  fig, ax = plt.subplots(figsize=(4.5, 4.2))
  ax.scatter(acc["demo"], acc["4x"])
  for i, (x, y) in enumerate(zip(acc["demo"], acc["4x"])):
    ax.annotate(str(i), (x, y), textcoords="offset points", xytext=(4, 2),
                fontsize=8)
  ax.set_xlabel("validation accuracy, demo budget (5,120 x 2)")
  ax.set_ylabel("validation accuracy, 4x budget (20,480 x 2)")
  ax.set_title(f"cheap reward vs 4x training: Spearman {rho:.2f}",
               fontsize=10)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(RESULTS / "proxy_check.png", dpi=120)


if __name__ == "__main__":
  main()
