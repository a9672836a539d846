#!/usr/bin/env bash
# bench/run.sh worker_allreduce: the allreduce benchmark on 2 ranks.
#   $1 = path of bench_worker_allreduce; extra args pass through.
set -euo pipefail
BIN=${1:?usage: worker_allreduce.sh BENCH_BINARY [max_mib rounds]}
shift
STORE=$(mktemp -u /tmp/gantry-gloo-store.XXXXXX)
trap 'rm -f "$STORE"' EXIT
mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$BIN" "${1:-256}" "${2:-5}" "$STORE"
