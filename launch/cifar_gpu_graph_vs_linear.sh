#!/usr/bin/env bash
# The paper's CIFAR-10 experiment (section 4.3, Fig. 6) on one GPU: PQT,
# lr 0.001, entropy 0.8, 1500 architectures, 20 epochs per child, for the
# graph space and its linear baseline; then both curves on one plot.
# Every child trains its whole budget, as in the paper (--rungs=none: no
# early stopping).
set -euo pipefail
DATA_DIR=${DATA_DIR:-$HOME/tensorflow_datasets}
for SPACE in cifar cifar_linear; do
  python -m graph_nas.launch --space=protos/$SPACE.textproto \
    --data_dir="$DATA_DIR" --download --out_dir=runs/paper_$SPACE \
    --algorithm=pqt --learning_rate=0.001 --entropy_weight=0.8 \
  --pg_weight=0 --nonormalize_advantages --nono_repeats --rungs=none \
    --max_trials=1500 --epochs=20 --batch_size=128 \
    --mixed_precision=mixed_float16 --executor=process --workers=1
done
python -m graph_nas.report --runs=runs/paper_cifar,runs/paper_cifar_linear \
  --plot=runs/paper_cifar_graph_vs_linear.png
