# The synthetic protocol shared by quickstart.sh and bench/pseudoseg_vs_baseline.sh
# (sourced, not run): one place for the flags, so that the quick start and the
# benchmark train exactly the same way. Both methods get the same flags, the same
# pretrained initialisation, the same labeled split, steps and seed.
#
# Reads PY (python, default .venv/bin/python), DATA (dataset folder, default
# work_dirs/synthetic), STEPS, BATCH, CROP (training steps, batch and square
# crop side) and PRETRAIN_STEPS; quiets TensorFlow's C++ logging.
PY=${PY:-.venv/bin/python}
DATA=${DATA:-work_dirs/synthetic}
export TF_CPP_MIN_LOG_LEVEL=2

# Batch 4 rather than 8 makes a 1000-step run 1.1-1.3x shorter (train_sup
# 231-266 s instead of 277 s, train_wss 508-601 s instead of 672 s, on a quiet
# 2-core machine), which pays for part of the quick start's third run
# (--weakly); at 1/128 the baseline stays below --weakly on every seed under it
# (bench/results/pseudoseg_vs_baseline.md).
STEPS=${STEPS:-1000}
BATCH=${BATCH:-4}
CROP=${CROP:-129}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-600}
PRETRAINED=${PRETRAINED:-work_dirs/pretrained/mobilenet_v2}

MODEL=(--model_variant=mobilenet_v2 --output_stride=16 --dataset=synthetic
       --dataset_dir="$DATA")
# Documented training flags only (the method's own flags keep the original's
# defaults): short runs need a faster batch-norm average than 0.9997 so that
# inference-mode statistics are usable after a few hundred steps.
TRAIN=(--train_crop_size="$CROP,$CROP" --num_clones=1 --train_batch_size="$BATCH"
       --training_number_of_steps="$STEPS" --base_learning_rate=0.01
       --batch_norm_decay=0.99 --min_scale_factor=0.75 --max_scale_factor=1.5
       --log_steps=25 --save_interval_secs=45 --max_to_keep=100
       --save_summaries_secs=30
       --tf_initial_checkpoint="$PRETRAINED/export/model.ckpt")
EVAL=(--eval_split=val --eval_crop_size=193,193)

# setting_of SPLIT: one line naming the setting of runs on labeled split SPLIT
# (analyze.py --setting, bench/gain_table.py --setting): a committed
# full-label bound is shown beside runs of the same setting only.
setting_of() {
  echo "synthetic $1, $STEPS steps, batch $BATCH, crop $CROP," \
    "pretrain $PRETRAIN_STEPS steps"
}

# progress_of LOG: the latest progress line of LOG, shortened to its counter
# and its ETA (e.g. "step 250/1000 ... ETA 0:04:10", "analysis 2/6 checkpoints
# ... ETA 0:01:40"); empty before the first. Every script logs the same line
# (utils/progress.py: `<counter>  <fields>  ETA h:mm:ss` after absl's `] `).
progress_of() {
  local line
  line=$(grep -a 'ETA [0-9]' "$1" 2>/dev/null | tail -n 1 | sed 's/^.*\] //' \
         || true)
  if [ -n "$line" ]; then
    printf '%s ... ETA %s' "${line%%  *}" "${line##*ETA }"
  fi
  return 0
}

# run_phase NAME LOG COMMAND...: runs COMMAND with its whole output in LOG and
# shows one updating console line (the command's latest progress line, with
# its ETA); on failure prints the end of LOG and exits 1.
run_phase() {
  local name=$1 log=$2
  shift 2
  mkdir -p "$(dirname "$log")"
  local start=$SECONDS
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    printf '\r\033[K%-9s %4ds  %s' "$name" $((SECONDS - start)) \
      "$(progress_of "$log")"
    sleep 2
  done
  if ! wait "$pid"; then
    printf '\r\033[K%-9s FAILED after %ds; last lines of %s:\n' "$name" \
      $((SECONDS - start)) "$log"
    tail -n 5 "$log"
    exit 1
  fi
  printf '\r\033[K%-9s done in %ds (log: %s)\n' "$name" $((SECONDS - start)) "$log"
}

# build_data: the synthetic dataset (segmentation splits + classification set).
build_data() {
  if [ ! -e "$DATA/cls_pretrain-00003-of-00004.tfrecord" ]; then
    run_phase data "$DATA.log" "$PY" datasets/build_synthetic_data.py \
      --output_dir="$DATA"
  fi
}

# pretrain: the backbone checkpoint both methods start from (built once).
pretrain() {
  if [ ! -e "$PRETRAINED/export/model.ckpt.index" ]; then
    run_phase pretrain "$PRETRAINED.log" "$PY" pretrain.py --logtostderr \
      --model_variant=mobilenet_v2 --dataset=synthetic --dataset_dir="$DATA" \
      --training_number_of_steps="$PRETRAIN_STEPS" --train_logdir="$PRETRAINED"
  fi
}

# train METHOD SPLIT SEED LOGDIR [FLAG...]: train_sup or train_wss with the
# protocol, plus FLAGs (e.g. --weakly).
train() {
  local method=$1 split=$2 seed=$3 logdir=$4
  shift 4
  run_phase "$method" "$logdir.log" "$PY" "train_$method.py" --logtostderr \
    "${MODEL[@]}" "${TRAIN[@]}" --train_split="$split" --seed="$seed" \
    --train_logdir="$logdir" "$@"
}

# evaluate LOGDIR EVAL_LOGDIR: val mIoU of the last checkpoint.
evaluate() {
  run_phase eval "$2.log" "$PY" eval.py --logtostderr "${MODEL[@]}" \
    "${EVAL[@]}" --checkpoint_dir="$1" --eval_logdir="$2" \
    --max_number_of_evaluations=1
}
