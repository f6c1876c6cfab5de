#!/usr/bin/env bash
# Runs the lines of a sweep plan one at a time with the quick start's protocol
# (bench/protocol.sh) and appends one row per finished run to a markdown table.
#
#   bash bench/sweep.sh PLAN [TABLE]      # TABLE: bench/results/sweep.md
#
# A plan line is `NAME METHOD SPLIT SEED STEPS BATCH [FLAG...]` (METHOD sup or
# wss; FLAGs go to the training script, e.g. --weakly); blank lines and lines
# starting with # are skipped. The plan is read again before every run, so
# lines may be added, removed or reordered while the sweep runs. A run whose
# NAME already has a row in TABLE is skipped, so an interrupted sweep resumes
# where it stopped. Each row records the 1-minute load average when the run
# started and ended: a figure taken above 2.5 is not a result (rerun it alone).
# Runs live under $OUT/NAME (work_dirs/sweep by default).
set -uo pipefail
cd "$(dirname "$0")/.."
PLAN=${1:?usage: bash bench/sweep.sh PLAN [TABLE]}
TABLE=${2:-bench/results/sweep.md}
OUT=${OUT:-work_dirs/sweep}
[ -r "$PLAN" ] || { echo "sweep: cannot read the plan $PLAN" >&2; exit 2; }

load1() { cut -d' ' -f1 /proc/loadavg; }

if [ ! -e "$TABLE" ]; then
  mkdir -p "$(dirname "$TABLE")"
  cat >"$TABLE" <<EOF
# Sweep: val mIoU of single runs with bench/protocol.sh

Written by \`bash bench/sweep.sh $PLAN $TABLE\` on $(nproc) CPU cores; each
row is one run, trained and evaluated alone on the machine. Load: 1-minute
load average at the start and the end of the run.

| name | method | split | seed | steps | batch | crop | flags | val mIoU | minutes | finished | load |
|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
fi

# next_line: the first plan line whose NAME has no row in TABLE yet.
next_line() {
  local name rest
  while read -r name rest; do
    [ -z "$name" ] || [[ "$name" == \#* ]] && continue
    grep -q "^| $name |" "$TABLE" || { echo "$name $rest"; return; }
  done <"$PLAN"
}

while line=$(next_line) && [ -n "$line" ]; do
  set -- $line
  name=$1 method=$2 split=$3 seed=$4
  STEPS=$5 BATCH=$6
  shift 6
  case $method in
    sup|wss) ;;
    *) echo "sweep: $name: METHOD must be sup or wss, got '$method'" >&2
       exit 2 ;;
  esac
  source bench/protocol.sh
  build_data
  pretrain
  load_start=$(load1)
  start=$SECONDS
  ( train "$method" "$split" "$seed" "$OUT/$name" "$@" ) || exit 1
  ( evaluate "$OUT/$name" "$OUT/$name.eval" ) || exit 1
  miou=$("$PY" -c "import json, sys
print('%.2f' % (100 * json.load(open(sys.argv[1]))['miou']))" \
         "$OUT/$name.eval/results.json")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %s / %s |\n' \
    "$name" "$method" "$split" "$seed" "$STEPS" "$BATCH" "$CROP" "${*:-}" \
    "$miou" "$(awk "BEGIN {print ($SECONDS - $start) / 60}")" \
    "$(date '+%Y-%m-%d %H:%M')" \
    "$load_start" "$(load1)" >>"$TABLE"
  echo "$name: val mIoU $miou"
done
echo "sweep: every line of $PLAN has a row in $TABLE"
