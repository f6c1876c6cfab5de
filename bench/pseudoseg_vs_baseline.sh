#!/usr/bin/env bash
# The quick start's comparison over several seeds, plus the full-label upper
# bound: baseline (train_sup) and PseudoSeg (train_wss) on 1/16 of train_aug
# (`16_clean_3`), and train_sup on all of train_aug, each from the same
# pretrained backbone with the same flags (bench/protocol.sh), evaluated on val.
# Writes bench/results/pseudoseg_vs_baseline.{md,json}.
#
#   bash bench/pseudoseg_vs_baseline.sh                # seeds 0 1 2, all runs
#   SEEDS="0" RUNS="full" bash bench/pseudoseg_vs_baseline.sh
#
# About 11 minutes per seed for sup + wss and 4 for full on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-work_dirs/synthetic}
OUT=${OUT:-work_dirs/bench_gain}
SEEDS=${SEEDS:-0 1 2}
RUNS=${RUNS:-sup wss full}
export TF_CPP_MIN_LOG_LEVEL=2
source bench/protocol.sh

build_data
pretrain
for seed in $SEEDS; do
  for run in $RUNS; do
    case $run in
      sup|wss) method=$run; split=16_clean_3 ;;
      full) method=sup; split=train_aug ;;
      *) echo "unknown run '$run' in RUNS (sup, wss, full)" >&2; exit 2 ;;
    esac
    dir="$OUT/seed$seed"
    if [ ! -e "$dir/eval_$run/results.json" ]; then
      train "$method" "$split" "$seed" "$dir/train_$run"
      evaluate "$dir/train_$run" "$dir/eval_$run"
    fi
  done
done
"$PY" bench/gain_table.py --runs_dir="$OUT" \
  --output=bench/results/pseudoseg_vs_baseline \
  --command="bash bench/pseudoseg_vs_baseline.sh" \
  --machine="$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
