#!/usr/bin/env bash
# Service crashes on the embedded cluster (issue 8, items 1 and 5): the
# supervisor of `gantry up --detach` restarts a SIGKILLed coordinator, which
# re-adopts the running attempt (the job SUCCEEDS on attempt 1); an attempt
# that ends while no coordinator runs is settled from its exit file by the
# next one; `gantry down` leaves no process. Waits poll with a deadline.
set -uo pipefail
source "$(dirname "$0")/lib.sh" "${1:-}" sup
pid_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pid'])" "$DATA/run/$1.json"; }
field() {  # field JOB EXPR: a value from `gantry job show JOB --json`
  gantry job show "$1" --json 2>/dev/null | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)"
}
state_is() { [ "$(field "$1" "j['job']['state']" 2>/dev/null)" = "$2" ]; }
trained() { grep -qs "step" "$DATA/jobs/$1/attempt-1/rank-0.log"; }

[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST missing: apt-get install dataset-fashion-mnist"
gantry up --detach --port-base 0 --slots 2 >"$DATA/up.log" 2>&1 || { cat "$DATA/up.log"; fail "gantry up"; }
ok "gantry up --detach"

cat >"$DATA/job.yaml" <<YAML
name: sup-mnist
model: {builtin: mlp, hidden: [32]}
data: {path: $FMNIST, limit: 2048}
resources: {workers: 2}
train:
  steps: 200
  batch_size: 32
  log_every: 5
  optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
checkpoint: {every_steps: 100}
YAML

# 1. SIGKILL the coordinator while a job trains: restarted, job re-adopted.
A=$(gantry submit "$DATA/job.yaml" --quiet) || fail "submit A"
wait_for 60 trained "$A" || fail "job A never trained"
old=$(pid_of coordinator)
kill -9 "$old"
wait_for 60 state_is "$A" SUCCEEDED || fail "job A did not succeed after the coordinator restart"
[ "$(field "$A" "len(j['attempts'])")" = 1 ] || fail "job A needed more than one attempt"
[ "$(pid_of coordinator)" != "$old" ] || fail "coordinator pid unchanged"
restarts=$(gantry status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['services']['coordinator']['supervisor']['restarts'])")
[ "$restarts" = 1 ] || fail "status shows coordinator restarts=$restarts, want 1"
ok "killed coordinator restarted; job $A re-adopted and SUCCEEDED on attempt 1"

# 2. No coordinator while the attempt ends: the next one settles it from exit_status.
B=$(gantry submit "$DATA/job.yaml" --set train.steps=60 --quiet) || fail "submit B"
wait_for 60 trained "$B" || fail "job B never trained"
kill -9 "$(python3 -c "import json; print(json.load(open('$DATA/run/supervisor.json'))['pid'])")"
kill -9 "$(pid_of coordinator)"
wait_for 90 test -f "$DATA/jobs/$B/attempt-1/exit_status" || fail "job B's attempt wrote no exit_status"
gantry up --detach >"$DATA/up2.log" 2>&1 || { cat "$DATA/up2.log"; fail "second gantry up"; }
grep -q "already running" "$DATA/up2.log" || fail "gantry up did not leave storage and monitor alone"
wait_for 30 state_is "$B" SUCCEEDED || fail "job B not settled SUCCEEDED from its exit file"
[ "$(field "$B" "len(j['attempts'])")" = 1 ] || fail "job B was restarted"
ok "attempt of $B that ended without a coordinator settled from its exit file"

gantry down >/dev/null || fail "gantry down"
pgrep -f "$DATA" >/dev/null && { pgrep -af "$DATA"; fail "Gantry processes remain after down"; }
ok "gantry down left no process"
echo "$checks passed, 0 failed"
