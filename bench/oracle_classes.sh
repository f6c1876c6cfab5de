#!/usr/bin/env bash
# Separates the two ways PseudoSeg's SGC can lose points in the unlabeled
# setting: the image-level classes it predicts, or the CAMs themselves.
#
#   OUT=work_dirs/bench_gain_128 SPLIT=128_clean bash bench/oracle_classes.sh
#
# For each seed folder of a bench/pseudoseg_vs_baseline.sh run, analyze.py
# measures the unlabeled run's last checkpoints twice: as trained (the SGC's
# CAMs follow the classifier's predicted classes) and through analyze.py's
# --weakly_logdir path, where the SGC's CAMs follow the ground-truth
# image-level labels of each val image (what a --weakly run trains with) while
# every weight is the unlabeled run's. In the written RESULTS.md the row
# "PseudoSeg (weakly ...)" is therefore the unlabeled run with true classes.
# Writes $OUT/seed<k>/oracle_classes/ and prints one table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-work_dirs/bench_gain_128}
SPLIT=${SPLIT:-128_clean}
SEEDS=${SEEDS:-0 1 2}
source bench/protocol.sh

for seed in $SEEDS; do
  runs=$OUT/seed$seed
  run_phase "oracle $seed" "$runs/oracle_classes.log" "$PY" analyze.py \
    "${MODEL[@]}" "${EVAL[@]}" --eval_batch_size="$BATCH" \
    --output_dir="$runs/oracle_classes" --sup_logdir="$runs/train_sup" \
    --wss_logdir="$runs/train_wss" --weakly_logdir="$runs/train_wss" \
    --max_checkpoints_per_run=4 --num_overlay_images=0 \
    --train_split="$SPLIT" --train_split_cls=train_aug
done
"$PY" - "$OUT" $SEEDS <<'PYTHON'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
names = ['decoder', 'SGC, predicted classes', 'SGC, true classes',
         'fused, predicted classes', 'fused, true classes']
print('| seed | ' + ' | '.join(names) + ' |')
print('|---' * (len(names) + 1) + '|')
columns = [[] for _ in names]
for seed in seeds:
  rows = json.load(open('%s/seed%s/oracle_classes/results.json' % (out, seed)))
  predicted, true = rows['rows'][1], rows['rows'][2]
  values = [predicted['pseudo_miou_decoder'], predicted['pseudo_miou_sgc'],
            true['pseudo_miou_sgc'], predicted['pseudo_miou_fused'],
            true['pseudo_miou_fused']]
  for column, value in zip(columns, values):
    column.append(100 * value)
  print('| %s | %s |' % (seed, ' | '.join('%.1f' % (100 * v) for v in values)))
if len(seeds) > 1:
  print('| mean ± std | %s |' % ' | '.join(
      '%.1f ± %.1f' % (statistics.mean(c), statistics.stdev(c))
      for c in columns))
PYTHON
