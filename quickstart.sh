#!/usr/bin/env bash
# One command for a newcomer: environment, the embedded synthetic dataset, a
# pretrained backbone (the stand-in for DeepLab's ImageNet checkpoint), then
# from that backbone, on the 1/128 labeled split (15 images): the supervised
# baseline, PseudoSeg (labeled + unlabeled images) and PseudoSeg --weakly
# (labeled + image-level labels of the other images), then the analysis: val
# mIoU of all three, the pseudo-label quality of each source (decoder, SGC,
# fused) and their calibration over training, a reliability diagram and
# side-by-side overlays. Outputs go to work_dirs/quickstart/ (RESULTS.md lists
# them); the dataset and the pretrained backbone are cached under work_dirs/
# and reused.
#
# Environment variables: SPLIT (labeled split, default 128_clean), STEPS
# (training steps per run, default 1000), BATCH (default 4), PRETRAIN_STEPS
# (default 600), OUT (default work_dirs/quickstart). bench/protocol.sh holds
# every training flag (shared with the benchmark).
set -euo pipefail
cd "$(dirname "$0")"

OUT=${OUT:-work_dirs/quickstart}
SPLIT=${SPLIT:-128_clean}
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
for run in sup wss weakly; do
  if [ ! -e "$OUT/train_$run/model.ckpt-$STEPS.index" ]; then
    case $run in
      weakly) train wss "$SPLIT" 0 "$OUT/train_$run" --weakly ;;
      *) train "$run" "$SPLIT" 0 "$OUT/train_$run" ;;
    esac
  fi
done
# The full-label row: the committed benchmark's, when it was measured in this
# setting (analyze.py checks; RESULTS.md says why when it was not).
run_phase analysis "$OUT/analysis.log" "$PY" analyze.py "${MODEL[@]}" \
  "${EVAL[@]}" --eval_batch_size="$BATCH" --output_dir="$OUT" \
  --sup_logdir="$OUT/train_sup" --wss_logdir="$OUT/train_wss" \
  --weakly_logdir="$OUT/train_weakly" --max_checkpoints_per_run=4 \
  --train_split="$SPLIT" --train_split_cls=train_aug \
  --setting="$(setting_of "$SPLIT")" \
  --upper_bound_json=bench/results/pseudoseg_vs_baseline_upper_bound.json
cat "$OUT/RESULTS.md"
echo "quick start finished in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
