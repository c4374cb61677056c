#!/usr/bin/env bash
# A real CIFAR-10 search sized for a laptop CPU (the README's first command).
# Offline here: DATA_DIR=../shared/data/tfds; with internet leave DATA_DIR
# empty and add --download so that tfds fetches CIFAR-10 itself.
set -euo pipefail
DATA_DIR=${DATA_DIR:-../shared/data/tfds}
OUT=${OUT:-runs/cifar_cpu_demo}
python -m graph_nas.launch --space=protos/cifar.textproto \
  --data_dir="$DATA_DIR" --out_dir="$OUT" \
  --max_trials=8 --walks_per_update=2 --epochs=1 --train_examples=1024 \
  --eval_examples=512 --batch_size=64 --log_every=1 "$@"
