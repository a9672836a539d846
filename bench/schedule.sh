#!/usr/bin/env bash
# bench/run.sh schedule: submissions per second and submit -> RUNNING
# latency for no-op jobs (one step on a 4-row CSV, 1 rank) through a real
# cluster (`gantry up --port-base 0` in a temporary data directory), and the
# same jobs through a real single-node Slurm (munged, slurmctld, slurmd on
# free ports in the same temporary folder: tests/integration/slurm_lib.sh)
# in the same run. Without root or Slurm installed, Gantry alone is measured
# against Slurm's documented 500 jobs/s.
#   $1 = path of bench_schedule; $2 = jobs (200); $3 = clients (4); $4 = latency rounds (10)
set -euo pipefail
BIN=${1:?usage: schedule.sh BENCH_BINARY [jobs clients rounds]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GANTRY=${GANTRY_BUILD_DIR:-$ROOT/build}/bin/gantry
TMP=$(mktemp -d /tmp/gantry-bench-schedule.XXXXXX)
source "$ROOT/tests/integration/slurm_lib.sh"
cleanup() {
  local rc=$?
  set +e
  slurm_cancel_all  # ours only, never a site's Slurm
  "$GANTRY" --data-dir "$TMP/cluster" down >/dev/null 2>&1 || true
  slurm_stop
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
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
SLURM_SCRIPT=()
if why=$(slurm_missing); then
  echo "# no Slurm to measure ($why): Gantry against Slurm's documented rate only" >&2
else
  set +e
  unset SLURM_CONF  # ours, not a site's
  slurm_start "$TMP/slurm" >&2 || { echo "slurm did not start" >&2; exit 1; }
  set -e
  # The same no-op job's worker, under srun as the slurm launcher runs it,
  # reporting to the same storage and monitor.
  STORAGE=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["services"]["storage"]["endpoints"]["api"])' <<<"$STATUS")
  INGEST=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["services"]["monitor"]["endpoints"]["ingest"])' <<<"$STATUS")
  WORKER=$(dirname "$GANTRY")/gantry-worker
  cat >"$TMP/noop-slurm.sh" <<SH
#!/bin/sh
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
log=$TMP/slurm-jobs/\$SLURM_JOB_ID
mkdir -p \$log
exec srun --mpi=pmix $WORKER --job-id slurm-\$SLURM_JOB_ID --attempt 1 --spec $TMP/noop.yaml --storage $STORAGE --monitor $INGEST --log-dir \$log
SH
  SLURM_SCRIPT=("$TMP/noop-slurm.sh")
fi
"$BIN" "$EP" "$TMP/noop.yaml" "${2:-200}" "${3:-4}" "${4:-10}" "${SLURM_SCRIPT[@]}"
