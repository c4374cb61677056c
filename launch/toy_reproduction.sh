#!/usr/bin/env bash
# The paper's toy tasks (Figs. 2 and 4): graph vs linear vs random search,
# 10 replicas x 200 trials, paper settings and a tuned row; prints the table.
set -euo pipefail
python benchmarks/toy_tasks.py --bench_out=${OUT:-benchmarks/results}
# One task through the experiment runner (JSON curves + PNG):
python -m graph_nas.experiment --task=select_optimizer_b4 \
  --out=runs/toy/select_optimizer_b4
# A toy space through the main launcher (same loop as the image searches):
python -m graph_nas.launch --space=protos/stack_layers.textproto \
  --algorithm=reinforce --learning_rate=0.001 --entropy_weight=0.1 \
  --max_trials=200 --retrain_best=false --out_dir=runs/stack_layers
