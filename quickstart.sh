#!/usr/bin/env bash
# One command for a newcomer: environment, the embedded synthetic dataset, a
# pretrained backbone (the stand-in for DeepLab's ImageNet checkpoint), the
# supervised baseline and PseudoSeg on its 1/16 split from that backbone, then
# the analysis: val mIoU of both, PseudoSeg's pseudo-label accuracy and
# calibration over training, a reliability diagram and side-by-side overlays.
# Outputs go to work_dirs/quickstart/ (RESULTS.md lists them); the dataset and
# the pretrained backbone are cached under work_dirs/ and reused.
#
# Environment variables: STEPS (training steps per method, default 1000),
# PRETRAIN_STEPS (default 600), OUT (default work_dirs/quickstart).
# bench/protocol.sh holds every training flag (shared with the benchmark).
set -euo pipefail
cd "$(dirname "$0")"

OUT=${OUT:-work_dirs/quickstart}
DATA=work_dirs/synthetic
PY=.venv/bin/python
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS=ignore
start=$SECONDS

if [ ! -x "$PY" ]; then
  python3 -m venv .venv
fi
echo "environment: installing requirements.txt into .venv"
"$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt

source bench/protocol.sh
build_data
pretrain
for method in sup wss; do
  if [ ! -e "$OUT/train_$method/model.ckpt-$STEPS.index" ]; then
    train "$method" 16_clean_3 0 "$OUT/train_$method"
  fi
done
run_phase analysis "$OUT/analysis.log" "$PY" analyze.py "${MODEL[@]}" \
  "${EVAL[@]}" --eval_batch_size=8 --sup_logdir="$OUT/train_sup" --wss_logdir="$OUT/train_wss" \
  --output_dir="$OUT" --max_checkpoints_per_run=4 \
  --upper_bound_json=bench/results/pseudoseg_vs_baseline_upper_bound.json --train_split=16_clean_3
cat "$OUT/RESULTS.md"
echo "quick start finished in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
