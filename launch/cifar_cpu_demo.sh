#!/usr/bin/env bash
# The README's first command: a real CIFAR-10 search sized for a 2-core CPU.
#
# The default searcher (regularized evolution over graph walks) with
# screening (graph_nas/search/screening.py): after its first 10 trials,
# each trial is the pick of 13 proposals, ranked by a random forest fit on
# the trials so far (--screen=predictor; a quarter of the picks drawn at
# random instead), so about 520 candidates are scored and 50 trained; and
# with early stopping (successive halving: every child reports after 1/4
# and 1/2 of its budget, and only the best quarter of those that reached a
# rung go on, --eta=4, Optuna's default reduction factor;
# graph_nas/search/halving.py) on the CPU-sized graph space
# (protos/cifar_cpu.textproto): 50 architectures, each child's full budget
# 4,096 images for 2 epochs (batch 32, SGD lr 0.1, no augmentation: what
# learns fastest at this budget), scored on 2,000 held-out training images
# (launch/cifar_cpu_demo.flags; the screening and stopping are in
# launch/cifar_cpu_demo_search.flags; the benchmark reads both); then the
# best child trained to the full budget is retrained on the whole training
# part (45,000 images, 2 epochs, augmented) and scored on the 10,000 test
# images. 13 min 47 s measured alone on 2 quiet cores, 26 min 10 s while
# the hypervisor took back 18 % of the CPU (benchmarks/results/
# cifar_cpu_demo.md; with --eta=2 and 5,120 images per child the search
# trained 2.1x the images: 19 min 42 s).
#
# Data: $TFDS_DATA_DIR when set, else ../shared/data/tfds beside the
# repository when it exists, else tfds' default folder, where CIFAR-10 is downloaded
# (see graph_nas/child/data.py). Extra flags are passed on, e.g. --out_dir=...
# Rerunning the same command resumes the search.
set -euo pipefail
python -m graph_nas.launch --space=protos/cifar_cpu.textproto \
  --out_dir=runs/cifar_cpu_demo --max_trials=50 --walks_per_update=2 \
  --flagfile="$(dirname "$0")/cifar_cpu_demo_search.flags" \
  --flagfile="$(dirname "$0")/cifar_cpu_demo.flags" \
  --final_train_examples=0 --final_epochs=2 "$@"
