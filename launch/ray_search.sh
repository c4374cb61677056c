#!/usr/bin/env bash
# Run on the head node of launch/ray_cluster.yaml: 8 children at a time, one
# GPU each, asynchronous controller updates. The SQLite store and checkpoint
# live on the head node; rerun the same command to resume.
set -euo pipefail
python -m graph_nas.launch --space=protos/cifar.textproto \
  --executor=ray --ray_address=auto --workers=8 --gpus_per_child=1 \
  --cpus_per_child=3 --update_policy=async --walks_per_update=8 \
  --max_staleness=2 --data_dir=${DATA_DIR:-$HOME/tensorflow_datasets} \
  --download --out_dir=${OUT:-runs/cifar_ray} "$@"
