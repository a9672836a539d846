#!/usr/bin/env bash
# bench/run.sh schedule: submissions per second and submit -> RUNNING
# latency for no-op jobs (one step on a 4-row CSV, 1 rank) through a real
# cluster (`gantry up --port-base 0` in a temporary data directory).
#   $1 = path of bench_schedule; $2 = jobs (200); $3 = clients (4); $4 = latency rounds (10)
set -euo pipefail
BIN=${1:?usage: schedule.sh BENCH_BINARY [jobs clients rounds]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GANTRY=${GANTRY_BUILD_DIR:-$ROOT/build}/bin/gantry
TMP=$(mktemp -d /tmp/gantry-bench-schedule.XXXXXX)
trap '"$GANTRY" --data-dir "$TMP/cluster" down >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
printf 'x1,x2,label\n0,1,0\n1,0,1\n1,1,1\n0,0,0\n' >"$TMP/tiny.csv"
cat >"$TMP/noop.yaml" <<YAML
name: noop
model: {builtin: mlp, hidden: [2]}
data: {format: csv, path: $TMP, train_file: tiny.csv}
resources: {workers: 1, slots_per_worker: 1}
train: {steps: 1, batch_size: 2, eval_every: 0, log_every: 1, threads: 1}
checkpoint: {every_steps: 0}
YAML
"$GANTRY" --data-dir "$TMP/cluster" up --detach --port-base 0 >/dev/null
STATUS=$("$GANTRY" --data-dir "$TMP/cluster" status --json)
EP=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["services"]["coordinator"]["endpoints"]["api"])' <<<"$STATUS")
# Run at raised priority (docs/performance.md), the services get it too:
# `up --detach` starts them in their own session, i.e. their own autogroup.
if [ "$(nice)" -lt 0 ]; then
  for pid in $(python3 -c 'import json,sys; print(*[s["pid"] for s in json.load(sys.stdin)["services"].values()])' <<<"$STATUS"); do
    echo "$(nice)" >"/proc/$pid/autogroup" 2>/dev/null || true
  done
fi
"$BIN" "$EP" "$TMP/noop.yaml" "${2:-200}" "${3:-4}" "${4:-10}"
