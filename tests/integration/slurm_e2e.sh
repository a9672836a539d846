#!/usr/bin/env bash
# The slurm launcher against a real Slurm: munged, slurmctld and slurmd of a
# single-node cluster in a scratch folder on free ports (slurm_lib.sh), and a
# Gantry cluster started with `gantry up --config` whose launcher.kind is
# slurm. A 2-rank job runs through sbatch + srun --mpi=pmix to SUCCEEDED;
# then, side by side on the node's 2 CPUs, a long 1-rank job survives a
# kill -9 of the coordinator (re-adopted by its Slurm job id), is cancelled
# with `gantry cancel` and ends CANCELLED and leaves no Slurm job or rank behind, and
# a 1-rank job whose rank exits 2 (bad data) is FAILED with failure class
# exit_code. Everything stops by pid. Exits 77 (skipped) when not root or
# Slurm is not installed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/slurm_lib.sh"
if why=$(slurm_missing); then
  echo "SKIP: $why"
  exit 77
fi
source "$HERE/lib.sh" "${1:-}" slurm
SD=$(mktemp -d /tmp/gantry-slurmd.XXXXXX)
stop_all() {
  slurm_cancel_all  # before slurmd goes, so that no rank outlives it
  gantry down --timeout 20 >/dev/null 2>&1
  slurm_stop
  rm -rf "$DATA" "$SD"
}
trap stop_all EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

slurm_start "$SD" || fail "slurm did not start (logs in $SD)"
ok "single-node Slurm up: $(sinfo -h -o '%P %D node(s) %c cpus %T') [${SECONDS}s]"

cat >"$DATA/cluster.yaml" <<YAML
coordinator: {stop_grace_seconds: 5}
launcher: {kind: slurm, partition: gantry}
YAML
gantry up --detach --port-base 0 --config "$DATA/cluster.yaml" >"$DATA/up.log" 2>&1 || { cat "$DATA/up.log"; fail "gantry up"; }
grep -q "launcher: slurm" "$DATA"/logs/coordinator*.log || fail "the coordinator did not pick the slurm launcher"
ok "gantry up --config with launcher.kind slurm [${SECONDS}s]"

printf 'x1,x2,label\n0,1,0\n1,0,1\n1,1,1\n0,0,0\n' >"$DATA/tiny.csv"
printf 'x1,x2\n0,1\n1,0\n' >"$DATA/nolabel.csv"
job() {  # job NAME STEPS TRAIN_FILE WORKERS
  cat >"$DATA/$1.yaml" <<YAML
name: $1
model: {builtin: mlp, hidden: [2]}
data: {format: csv, path: $DATA, train_file: $3}
resources: {workers: $4}
train: {steps: $2, batch_size: 2, eval_every: 0, log_every: 1, threads: 1, heartbeat_seconds: 1}
checkpoint: {every_steps: 0}
YAML
}
slurm_id() { cat "$DATA/jobs/$1/attempt-1/slurm_job_id" 2>/dev/null; }
slurm_state() { scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
field() { gantry job show "$1" --json | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)"; }

# 1. A 2-rank job through sbatch + srun to SUCCEEDED.
job ok 5 tiny.csv 2
A=$(gantry submit "$DATA/ok.yaml" --quiet) || fail "submit ok"
gantry wait "$A" --timeout 45 >"$DATA/wait-a.log" 2>&1
rc=$?
[ $rc -eq 0 ] || { cat "$DATA/wait-a.log"; gantry logs "$A" --launcher; fail "job $A did not succeed (wait exit $rc)"; }
SA=$(slurm_id "$A") || fail "no Slurm job id recorded for $A"
[ "$(field "$A" "j['attempts'][0]['pid']")" = "$SA" ] || fail "attempt record does not carry Slurm job $SA"
[ "$(slurm_state "$SA")" = COMPLETED ] || fail "Slurm job $SA is $(slurm_state "$SA"), not COMPLETED"
for r in 0 1; do
  [ -s "$DATA/jobs/$A/attempt-1/rank-$r.log" ] || fail "rank $r of $A left no log"
done
gantry logs "$A" --launcher | grep -q "Slurm job $SA RUNNING on" || fail "launcher log lacks the Slurm state"
ok "2-rank job $A SUCCEEDED as Slurm job $SA (COMPLETED, both ranks ran) [${SECONDS}s]"

# 2. A long job, cancelled while it trains: CANCELLED, and Slurm lets it go;
# 3. beside it, a rank that exits 2 (no label column): FAILED, classified by
# the exit code.
job long 1000000 tiny.csv 1
job bad 5 nolabel.csv 1
B=$(gantry submit "$DATA/long.yaml" --quiet) || fail "submit long"
C=$(gantry submit "$DATA/bad.yaml" --quiet) || fail "submit bad"
wait_for 30 test -n "$(slurm_id "$B")" || fail "job $B was not submitted to Slurm"
SB=$(slurm_id "$B")
trained() { [ "$(field "$B" "max([r['step'] for r in j.get('progress', {}).get('ranks', [])] or [0])")" -gt 0 ]; }
wait_for 30 trained || { gantry logs "$B" --launcher; fail "job $B (Slurm $SB) sent no heartbeat with a step"; }
[ "$(slurm_state "$SB")" = RUNNING ] || fail "Slurm job $SB is $(slurm_state "$SB") while training"
# The coordinator dies (kill -9); the supervisor restarts it and it re-adopts
# the Slurm job by its id; the cancel below goes through the adopted launch.
pid_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pid'])" "$DATA/run/$1.json" 2>/dev/null; }
old=$(pid_of coordinator) && kill -0 "$old" || fail "no live coordinator"
kill -9 "$old"
restarted() { local p; p=$(pid_of coordinator) && [ "$p" != "$old" ] && gantry job show "$B" >/dev/null 2>&1; }
wait_for 30 restarted || fail "the coordinator was not restarted"
grep -q "job $B: re-adopted running attempt 1 (pid $SB" "$DATA"/logs/coordinator*.log ||
  fail "the restarted coordinator did not re-adopt Slurm job $SB: $(grep "$B" "$DATA"/logs/coordinator*.log | tail -3)"
[ "$(field "$B" "j['job']['state']")" = RUNNING ] || fail "job $B is $(field "$B" "j['job']['state']") after the restart"
ok "coordinator killed -9 and restarted: job $B re-adopted as Slurm job $SB, still RUNNING [${SECONDS}s]"
gantry cancel "$B" >/dev/null || fail "cancel $B"
gantry wait "$B" --timeout 30 >/dev/null 2>&1
[ "$(field "$B" "j['job']['state']")" = CANCELLED ] || fail "job $B is $(field "$B" "j['job']['state']"), not CANCELLED"
wait_for 15 test "$(slurm_state "$SB")" = CANCELLED || fail "Slurm job $SB is $(slurm_state "$SB"), not CANCELLED"
[ -z "$(squeue -h -j "$SB" -t pending,running,completing 2>/dev/null)" ] || fail "Slurm job $SB still queued"
wait_for 15 test -z "$(pgrep -f -- "--job-id $B")" || fail "ranks of $B still run: $(pgrep -af -- "--job-id $B")"
ok "job $B cancelled while training: CANCELLED, Slurm job $SB CANCELLED, no rank left [${SECONDS}s]"

gantry wait "$C" --timeout 45 >/dev/null 2>&1
[ "$(field "$C" "j['job']['state']")" = FAILED ] || fail "job $C is $(field "$C" "j['job']['state']"), not FAILED"
SC=$(slurm_id "$C")
[ "$(slurm_state "$SC")" = FAILED ] || fail "Slurm job $SC is $(slurm_state "$SC"), not FAILED"
cls=$(field "$C" "j['attempts'][0]['failure_class'], j['attempts'][0]['exit_code']")
[ "$cls" = "exit_code 2" ] || fail "attempt of $C classified '$cls', want 'exit_code 2'"
field "$C" "j['job']['reason']" | grep -q "exit code 2" || fail "reason of $C does not give the exit code"
ok "job $C FAILED as Slurm job $SC: failure class exit_code, exit code 2 [${SECONDS}s]"

gantry down --timeout 20 >/dev/null || fail "gantry down"
echo "all $checks checks passed in $SECONDS s"
