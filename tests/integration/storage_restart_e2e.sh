#!/usr/bin/env bash
# Checkpoints survive a storage restart (issue 8, item 4): on a cluster from
# `gantry up --detach`, gantry-storage is SIGKILLed while a job trains and
# checkpoints; the supervisor restarts it, the worker keeps the snapshot it
# could not save and retries it, and the job SUCCEEDS on its first attempt
# in at most its uninterrupted time + 30 s. The registry then holds one
# version per checkpointed step (no duplicate) and passes `gantry ckpt fsck`.
# Waits poll with a deadline.
set -uo pipefail
source "$(dirname "$0")/lib.sh" "${1:-}" stor
pid_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pid'])" "$DATA/run/$1.json"; }
field() {  # field JOB EXPR: a value from `gantry job show JOB --json`
  gantry job show "$1" --json 2>/dev/null | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)"
}
state_is() { [ "$(field "$1" "j['job']['state']" 2>/dev/null)" = "$2" ]; }
saved_once() { grep -qs "checkpoint saved" "$DATA/jobs/$1/attempt-1/rank-0.log"; }

[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST missing: apt-get install dataset-fashion-mnist"
gantry up --detach --port-base 0 --slots 2 >"$DATA/up.log" 2>&1 || { cat "$DATA/up.log"; fail "gantry up"; }
ok "gantry up --detach"

cat >"$DATA/job.yaml" <<YAML
name: stor-mnist
model: {builtin: mlp, hidden: [32]}
data: {path: $FMNIST, limit: 2048}
resources: {workers: 2}
train:
  steps: 3000
  batch_size: 32
  log_every: 20
  optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
checkpoint: {every_steps: 100, final_save_timeout: 60}
YAML

# 1. The same job uninterrupted: its time is the yardstick.
t0=$SECONDS
A=$(gantry submit "$DATA/job.yaml" --set name=stor-ref --quiet) || fail "submit reference job"
wait_for 300 state_is "$A" SUCCEEDED || fail "reference job $A did not succeed"
normal=$((SECONDS - t0))
ok "uninterrupted job $A SUCCEEDED in ${normal}s"

# 2. SIGKILL storage after the first checkpoint; nobody does anything else.
t0=$SECONDS
B=$(gantry submit "$DATA/job.yaml" --quiet) || fail "submit B"
wait_for 120 saved_once "$B" || fail "job B saved no checkpoint"
old=$(pid_of storage)
kill -9 "$old"
echo "# killed gantry-storage (pid $old) at $(grep -c "checkpoint saved" "$DATA/jobs/$B/attempt-1/rank-0.log") saved checkpoints"
# The kill must land mid-job (400 steps ended within one 0.2 s poll here).
state_is "$B" RUNNING || fail "job B was no longer running when storage was killed: lengthen the job"
wait_for $((normal + 30)) state_is "$B" SUCCEEDED || fail "job B not SUCCEEDED within ${normal}s + 30s"
took=$((SECONDS - t0))
[ "$(field "$B" "len(j['attempts'])")" = 1 ] || fail "job B needed more than one attempt"
storage_restarted() { local p; p=$(pid_of storage 2>/dev/null) && [ "$p" != "$old" ] && kill -0 "$p" 2>/dev/null; }
wait_for 30 storage_restarted || fail "storage was not restarted within 30 s"
ok "storage SIGKILLed mid-job: job $B SUCCEEDED on attempt 1 in ${took}s (uninterrupted: ${normal}s)"

# 3. The registry: distinct steps, the final step saved, fsck clean.
gantry ckpt list stor-mnist --json >"$DATA/list.json" || fail "ckpt list"
python3 - "$DATA/list.json" "$B" <<'PY' || fail "registry check: $(cat "$DATA/list.json" | head -c 2000)"
import json, sys
versions = [v for v in json.load(open(sys.argv[1]))["versions"] if v["job_id"] == sys.argv[2]]
steps = [v["step"] for v in versions]
assert len(steps) == len(set(steps)), f"duplicate versions of one step: {sorted(steps)}"
assert 3000 in steps, f"no version at the final step 3000: {sorted(steps)}"
print(f"# {len(steps)} versions, steps {sorted(steps)}")
PY
grep -q "storage unavailable" "$DATA/jobs/$B/attempt-1/rank-0.log" &&
  echo "# the worker kept and retried a snapshot: $(grep -m1 "storage unavailable" "$DATA/jobs/$B/attempt-1/rank-0.log")"
gantry ckpt fsck >"$DATA/fsck.out" 2>&1 || { cat "$DATA/fsck.out"; fail "ckpt fsck found problems"; }
ok "registry: one version per step of $B, final step saved, fsck clean"

gantry down >/dev/null || fail "gantry down"
pgrep -f "$DATA" >/dev/null && { pgrep -af "$DATA"; fail "Gantry processes remain after down"; }
ok "gantry down left no process"
echo "$checks passed, 0 failed"
