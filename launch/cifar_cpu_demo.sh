#!/usr/bin/env bash
# The README's first command: a real CIFAR-10 search sized for a 2-core CPU.
#
# PQT with the paper's controller settings (pinned: pure queue training,
# raw advantages, repeats allowed -- the controller the demo's figures were
# measured with; the package's defaults are benchmarks/README.md's) on the
# CPU-sized graph space
# (protos/cifar_cpu.textproto): 14 trials (an architecture proposed again
# reuses its stored result: 12 children are trained), each child
# trained on 5,120 images for 2 epochs (batch 32, SGD lr 0.1, no
# augmentation: what learns fastest at this budget) and scored on 2,000
# held-out training images; then the
# best child is retrained on the whole training part (45,000 images, 1
# epoch, augmented) and scored on the 10,000 test images. About 8 minutes
# on 2 cores.
#
# Data: $TFDS_DATA_DIR when set, else ../shared/data/tfds beside the
# repository when it exists, else tfds' default folder, where CIFAR-10 is downloaded
# (see graph_nas/child/data.py). Extra flags are passed on, e.g. --out_dir=...
# Rerunning the same command resumes the search.
set -euo pipefail
python -m graph_nas.launch --space=protos/cifar_cpu.textproto \
  --out_dir=runs/cifar_cpu_demo --algorithm=pqt \
  --learning_rate=0.001 --entropy_weight=0.8 --queue_size=10 \
  --pg_weight=0 --nonormalize_advantages --nono_repeats \
  --max_trials=14 --walks_per_update=2 \
  --train_examples=5120 --epochs=2 --batch_size=32 \
  --child_learning_rate=0.1 --noaugment --eval_examples=2000 \
  --final_train_examples=0 --final_epochs=1 "$@"
