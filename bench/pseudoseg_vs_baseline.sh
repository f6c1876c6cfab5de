#!/usr/bin/env bash
# The quick start's comparison over several seeds, plus the full-label upper
# bound: baseline (train_sup), PseudoSeg (train_wss) and PseudoSeg with the
# image-level labels of the unlabeled images (train_wss --weakly) on the
# labeled split SPLIT of train_aug, and train_sup on all of train_aug, each
# from the same pretrained backbone with the same flags (bench/protocol.sh;
# BATCH, CROP and STEPS as there), evaluated on val. Writes
# $RESULTS.{md,json} (default bench/results/pseudoseg_vs_baseline). A run whose
# eval results already exist under $OUT is not run again.
#
#   bash bench/pseudoseg_vs_baseline.sh                # seeds 0 1 2, all runs
#   SEEDS="0" RUNS="full" bash bench/pseudoseg_vs_baseline.sh
#
# With the defaults (1/128, batch 4) about 5 minutes per sup run and 10 per
# wss or weakly run on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-work_dirs/bench_gain}
SPLIT=${SPLIT:-128_clean}
SEEDS=${SEEDS:-0 1 2}
RUNS=${RUNS:-sup wss weakly full}
RESULTS=${RESULTS:-bench/results/pseudoseg_vs_baseline}
source bench/protocol.sh

build_data
pretrain
for seed in $SEEDS; do
  for run in $RUNS; do
    extra=()
    case $run in
      sup|wss) method=$run; split=$SPLIT ;;
      weakly) method=wss; split=$SPLIT; extra=(--weakly) ;;
      full) method=sup; split=train_aug ;;
      *) echo "unknown run '$run' in RUNS (sup, wss, weakly, full)" >&2
         exit 2 ;;
    esac
    dir="$OUT/seed$seed"
    if [ ! -e "$dir/eval_$run/results.json" ]; then
      train "$method" "$split" "$seed" "$dir/train_$run" "${extra[@]}"
      evaluate "$dir/train_$run" "$dir/eval_$run"
    fi
  done
done
"$PY" bench/gain_table.py --runs_dir="$OUT" \
  --output="$RESULTS" \
  --command="OUT=$OUT SPLIT=$SPLIT RESULTS=$RESULTS bash bench/pseudoseg_vs_baseline.sh" \
  --setting="$(setting_of "$SPLIT")" \
  --machine="$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
