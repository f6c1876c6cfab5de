#!/usr/bin/env bash
# A smoke-test cluster on this machine: 1 parameter server + 2 workers of a
# training script on 127.0.0.1, each its own process with its own TensorFlow
# server (README "Scaling" shows the same flags for real hosts).
#
#   scripts/launch_local_cluster.sh TRAIN_LOGDIR [training flags...]
#
# Every process gets the same flags plus --ps_hosts/--worker_hosts/--job_name/
# --task/--train_logdir; add --sync_replicas for synchronous updates. Worker 0
# is the chief (checkpoints in TRAIN_LOGDIR). The script waits for both workers,
# then stops the parameter server; exit status is the first failing worker's.
# Logs (ps0.log, worker0.log, worker1.log), the pids of the three processes
# (pids) and the command of each (ps0.sh, worker0.sh, worker1.sh) go to
# $CLUSTER_LOG_DIR (default: TRAIN_LOGDIR.cluster).
#
# A task that was killed can be started again with its command, e.g.
#   bash TRAIN_LOGDIR.cluster/worker1.sh >>TRAIN_LOGDIR.cluster/worker1.log 2>&1
# while the others still run (docs/RELIABILITY.md says what is recovered):
# the parameter server is stopped once the workers this script started have
# ended and no worker started again so holds its port.
#
# Environment: SCRIPT (default train_sup.py), PYTHON (default python),
# PORT_BASE (default 22220: ports PORT_BASE..PORT_BASE+2).
set -u
if [ $# -lt 1 ]; then
  echo "usage: $0 TRAIN_LOGDIR [training flags...]" >&2
  exit 2
fi
cd "$(dirname "$0")/.." || exit 1
logdir=$1
shift
script=${SCRIPT:-train_sup.py}
python=${PYTHON:-python}
base=${PORT_BASE:-22220}
logs=${CLUSTER_LOG_DIR:-${logdir}.cluster}
mkdir -p "$logs" || exit 1
cluster=(--ps_hosts="127.0.0.1:${base}"
         --worker_hosts="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
         --train_logdir="$logdir")

pids=()
stop_all() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null
  done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

start() {  # job task: starts one task in the background, records its pid
  local command=("$python" "$script" "${cluster[@]}" --job_name="$1"
                 --task="$2" "${@:3}")
  printf 'cd %q && exec%s\n' "$PWD" "$(printf ' %q' "${command[@]}")" \
    >"$logs/$1$2.sh"
  "${command[@]}" >"$logs/$1$2.log" 2>&1 &
  pids+=($!)
  echo "$1 $2 $!" >>"$logs/pids"
}

port_in_use() {  # port: whether a process listens on it on 127.0.0.1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

: >"$logs/pids"
start ps 0 "$@"
start worker 0 "$@"
start worker 1 "$@"
echo "cluster: ps pid ${pids[0]}, workers ${pids[1]} ${pids[2]}; logs in $logs"
status=0
for pid in "${pids[1]}" "${pids[2]}"; do
  wait "$pid"
  code=$?
  if [ "$status" -eq 0 ]; then
    status=$code
  fi
done
# A worker started again by hand is no child of this script: wait for it too.
for port in $((base + 1)) $((base + 2)); do
  while port_in_use "$port"; do
    sleep 1
  done
done
exit "$status"
