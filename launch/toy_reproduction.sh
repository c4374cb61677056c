#!/usr/bin/env bash
# The paper's toy tasks (Figs. 2 and 4): graph vs linear vs random search.
set -euo pipefail
# Stack layers and select optimizer, 10 replicas x 200 trials, paper
# settings and a tuned row; prints the table.
python benchmarks/toy_tasks.py --bench_out=${OUT:-benchmarks/results}
# Select optimizer at budgets that can show learning (1,000 trials; rerun
# with --trials=5000 to extend every replica), each entropy convention, a
# tuned setting and the numeric-action option; bootstrap intervals.
python benchmarks/select_optimizer.py --trials=1000
# The branching task in 200 trials (B = 4 graph form, best@200 >= 0.60):
# REINFORCE, one walk per update, with the numeric-action option.
python -m graph_nas.experiment --task=select_optimizer_b4 --forms=graph \
  --learning_rate=0.01 --entropy_weight=0.2 --entropy_mode=normalized \
  --value_features=32 --out=runs/toy/select_b4_fast
# One task through the experiment runner (JSON curves + PNG); every replica
# is a resumable search in runs/toy/stack_tuned/<form>/replica_<i>:
python -m graph_nas.experiment --task=stack_layers --learning_rate=0.005 \
  --entropy_weight=0.1 --forms=graph,linear --out=runs/toy/stack_tuned
# A toy space through the main launcher (same loop as the image searches):
python -m graph_nas.launch --space=protos/stack_layers.textproto \
  --algorithm=reinforce --learning_rate=0.001 --entropy_weight=0.1 \
  --max_trials=200 --retrain_best=false --out_dir=runs/stack_layers
