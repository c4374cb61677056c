#!/usr/bin/env bash
# ImageNet search (paper Fig. 7) with children trained on a Cloud TPU.
# ImageNet must be prepared for tfds in DATA_DIR (manual download, see
# https://www.tensorflow.org/datasets/catalog/imagenet2012).
# Usage: TPU=my-tpu DATA_DIR=gs://my-bucket/tfds bash launch/imagenet_tpu.sh
set -euo pipefail
: "${TPU:?set TPU to the TPU name or address}"
: "${DATA_DIR:?set DATA_DIR to the tfds data dir holding imagenet2012}"
python -m graph_nas.launch --space=protos/imagenet.textproto \
  --data_dir="$DATA_DIR" --strategy=tpu --tpu="$TPU" \
  --mixed_precision=mixed_bfloat16 --batch_size=1024 --epochs=5 \
  --algorithm=pqt --learning_rate=0.001 --entropy_weight=0.8 \
  --pg_weight=0 --nonormalize_advantages --nono_repeats --rungs=none \
  --max_trials=1500 --target_flops=300000000 --steps_per_execution=32 \
  --out_dir=${OUT:-runs/imagenet_tpu} "$@"
