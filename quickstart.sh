#!/usr/bin/env bash
# One command for a newcomer: environment, embedded synthetic dataset, a short
# supervised-baseline run and a short PseudoSeg run on its 1/16 split, each
# evaluated on `val` and visualised. Everything goes under work_dirs/.
#
# Environment variables: STEPS (training steps per run, default 1000; about
# 12 minutes in all on 2 CPU cores, STEPS=300 is a 4-minute smoke run),
# OUT (output folder, default work_dirs/quickstart).
set -euo pipefail
cd "$(dirname "$0")"

STEPS=${STEPS:-1000}
OUT=${OUT:-work_dirs/quickstart}
DATA=work_dirs/synthetic
PY=.venv/bin/python

if [ ! -x "$PY" ]; then
  python3 -m venv .venv
fi
"$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt

if [ ! -e "$DATA/val-00000-of-00004.tfrecord" ]; then
  "$PY" datasets/build_synthetic_data.py --output_dir="$DATA"
fi

MODEL=(--model_variant=mobilenet_v2 --output_stride=16 --dataset=synthetic
       --dataset_dir="$DATA")
# Short runs from scratch: a faster batch-norm average so that inference-mode
# statistics are usable after a few hundred steps.
TRAIN=(--logtostderr --train_split=16_clean_3 --train_crop_size=129,129
       --num_clones=1 --train_batch_size=8 --training_number_of_steps="$STEPS"
       --base_learning_rate=0.01 --batch_norm_decay=0.99
       --min_scale_factor=0.75 --max_scale_factor=1.5 --log_steps=25
       --save_summaries_secs=60 --seed=0)

for method in sup wss; do
  "$PY" "train_$method.py" "${MODEL[@]}" "${TRAIN[@]}" \
    --train_logdir="$OUT/train_$method"
  "$PY" eval.py --logtostderr "${MODEL[@]}" --eval_split=val \
    --eval_crop_size=193,193 --checkpoint_dir="$OUT/train_$method" \
    --eval_logdir="$OUT/eval_$method" --max_number_of_evaluations=1
  "$PY" vis.py --logtostderr "${MODEL[@]}" --vis_split=val \
    --vis_crop_size=193,193 --checkpoint_dir="$OUT/train_$method" \
    --vis_logdir="$OUT/vis_$method" --also_save_raw_predictions=true
done

"$PY" - "$OUT" <<'PYEOF'
import json, os, sys
out = sys.argv[1]
for method in ('sup', 'wss'):
  with open(os.path.join(out, 'eval_' + method, 'results.json')) as f:
    result = json.load(f)
  print('%s: mIoU %.2f%% on %d val images (step %s)' % (
      method, 100 * result['miou'], result['num_images'], result['global_step']))
print('checkpoints:     %s/train_{sup,wss}' % out)
print('eval results:    %s/eval_{sup,wss}/results.json' % out)
print('visualizations:  %s/vis_{sup,wss}/{segmentation,raw_segmentation,overlay}_results' % out)
print('summaries:       %s (pip install tensorboard; tensorboard --logdir %s)'
      % (out, out))
PYEOF
