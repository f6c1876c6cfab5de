#!/usr/bin/env bash
# Supervised baseline vs PseudoSeg on the synthetic dataset, same labeled split,
# same steps, same seed; prints the val mIoU of each run.
#
#   bash bench/synthetic_sup_vs_wss.sh [STEPS] [SPLITS...]
#   e.g. bash bench/synthetic_sup_vs_wss.sh 2000 16_clean_3 4_clean
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-2000}
shift || true
SPLITS=("${@:-16_clean_3}")
PY=${PY:-.venv/bin/python}
DATA=${DATA:-work_dirs/synthetic}
OUT=${OUT:-work_dirs/sup_vs_wss}

[ -e "$DATA/val-00000-of-00004.tfrecord" ] || \
  "$PY" datasets/build_synthetic_data.py --output_dir="$DATA"

MODEL=(--model_variant=mobilenet_v2 --output_stride=16 --dataset=synthetic
       --dataset_dir="$DATA")
for split in "${SPLITS[@]}"; do
  for method in sup wss; do
    run="$OUT/${split}_$method"
    "$PY" "train_$method.py" --logtostderr "${MODEL[@]}" --train_split="$split" \
      --train_crop_size=129,129 --num_clones=1 --train_batch_size=8 \
      --base_learning_rate=0.01 --batch_norm_decay=0.99 \
      --training_number_of_steps="$STEPS" \
      --min_scale_factor=0.75 --max_scale_factor=1.5 --seed=0 \
      --log_steps=100 --save_interval_secs=600 --train_logdir="$run/train" \
      2> "$run.train.log"
    "$PY" eval.py --logtostderr "${MODEL[@]}" --eval_split=val \
      --eval_crop_size=193,193 --checkpoint_dir="$run/train" \
      --eval_logdir="$run/eval" --max_number_of_evaluations=1 \
      > "$run.eval.log" 2>&1
    "$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); \
print('%-12s %-4s step %6d  val mIoU %.2f%%' % (sys.argv[2], sys.argv[3], \
r['global_step'], 100 * r['miou']))" "$run/eval/results.json" "$split" "$method"
  done
done
