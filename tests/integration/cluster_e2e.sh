#!/usr/bin/env bash
# End to end, as a user meets Gantry: start the embedded cluster in a fresh
# data directory, refuse bad specs, run a 2-rank Fashion-MNIST job to
# SUCCEEDED, find its metrics in the monitor and its checkpoint in storage,
# cancel a second job while it trains, stop the cluster, and check that no
# Gantry process is left. Waits poll a condition with a deadline.
set -uo pipefail
source "$(dirname "$0")/lib.sh" "${1:-}" e2e

[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST missing: apt-get install dataset-fashion-mnist"

# Commands against a cluster that is not running say so and how to start it.
out=$(gantry jobs 2>&1) && fail "gantry jobs succeeded with no cluster"
grep -q "gantry up" <<<"$out" || fail "no-cluster message does not say how to start: $out"
ok "commands without a cluster point at gantry up"

gantry up --detach --port-base 0 --slots 2 >"$DATA/up.log" 2>&1 || { cat "$DATA/up.log"; fail "gantry up"; }
gantry status >/dev/null || fail "gantry status after up"
ok "gantry up --detach started coordinator, storage and monitor"

cat >"$DATA/job.yaml" <<YAML
name: e2e-mnist
model: {builtin: mlp, hidden: [32]}
data: {path: $FMNIST, limit: 2048}
resources: {workers: 2}
train:
  steps: 30
  batch_size: 32
  log_every: 5
  optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
checkpoint: {every_steps: 10}
YAML

# Bad specs are refused with the field named, and nothing is queued.
expect_refused() {
  local field=$1
  shift
  local out
  out=$(gantry submit "$DATA/job.yaml" "$@" 2>&1) && fail "accepted bad spec ($*)"
  grep -q "$field" <<<"$out" || fail "error for ($*) does not name $field: $out"
}
expect_refused train.batch_size --set train.batch_size=-4
expect_refused "unknown field train.batchsize" --set train.batchsize=4
expect_refused resources.workers --set resources.workers=5
expect_refused data.path --set data.path=/nonexistent
expect_refused resources.workers --set resources.workers=two
[ "$(gantry jobs --json | grep -c job_id)" -eq 0 ] || fail "a refused spec was queued"
ok "invalid specs refused naming the field; queue empty"

A=$(gantry submit "$DATA/job.yaml" --quiet) || fail "submit"
gantry watch "$A" >"$DATA/watch-a.log" 2>&1
rc=$?
[ $rc -eq 0 ] || { cat "$DATA/watch-a.log"; fail "watch exit $rc for job A"; }
grep -q "SUCCEEDED" "$DATA/watch-a.log" || fail "watch did not report SUCCEEDED"
grep -q "step 30/30" "$DATA/watch-a.log" || { cat "$DATA/watch-a.log"; fail "watch did not show the last step"; }
# Ranks other than 0 report only their step time: the progress line must not
# turn their missing loss into nan.
! grep -q "nan" "$DATA/watch-a.log" || { cat "$DATA/watch-a.log"; fail "watch printed nan"; }
[ "$(gantry job show "$A" --json | grep -c '"state": "SUCCEEDED"')" -eq 1 ] || fail "job A not SUCCEEDED"
ok "2-rank job $A ran to SUCCEEDED, watched live"

# Watching a finished job replays the recorded history, where a step's
# training and evaluation values are merged: both must show.
replay=$(gantry watch "$A") || fail "watch on a finished job"
grep -q "step 30/30" <<<"$replay" || { echo "$replay"; fail "replayed history lacks the last step"; }
grep -q "eval at step 30" <<<"$replay" || { echo "$replay"; fail "replayed history lacks the evaluation"; }
! grep -q "nan" <<<"$replay" || { echo "$replay"; fail "replayed history printed nan"; }
metrics=$(gantry watch "$A" --json) || fail "watch --json on a finished job"
grep -q '"loss"' <<<"$metrics" || fail "no loss metrics recorded in the monitor"
grep -q '"test_accuracy"' <<<"$metrics" || fail "no evaluation metrics recorded"
ok "metrics of $A found in the monitor"

ck=$(gantry ckpt list e2e-mnist --json) || fail "ckpt list"
grep -q '"version": 3' <<<"$ck" || fail "expected 3 checkpoint versions (steps 10, 20, 30): $ck"
grep -q "\"job_id\": \"$A\"" <<<"$ck" || fail "checkpoint not linked to job $A"
ls "$DATA"/checkpoints/e2e-mnist/v3 >/dev/null || fail "no version folder v3"
ok "checkpoints v1..v3 of $A found in storage"

# `gantry drift` runs gantry-drift (the only CLI program that loads
# LibTorch) with the same arguments: the stored profile of v3 against 300
# test images. Exit 0 (no drift) or 2 (drift); 1 would be an error.
ldd "$BIN/gantry" | grep -q libtorch && fail "gantry links LibTorch (every command would pay its start-up)"
gantry drift check e2e-mnist@v3 "$FMNIST/t10k-images-idx3-ubyte.gz,$FMNIST/t10k-labels-idx1-ubyte.gz" \
  --sample 300 --json >"$DATA/drift.json"
rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || fail "gantry drift check exited $rc: $(cat "$DATA/drift.json")"
grep -q '"features"' "$DATA/drift.json" || fail "gantry drift check printed no features: $(head -c 300 "$DATA/drift.json")"
# v3 recorded its predictions on the test set at its evaluation (step 30):
# the check ran v3 on the 300 images and compared the predicted classes.
/usr/bin/python3 - "$DATA/drift.json" <<'PY' || fail "no prediction comparison in gantry drift check: $(head -c 300 "$DATA/drift.json")"
import json, sys
p = json.load(open(sys.argv[1]))["predictions"]
assert p["reference"] == "eval_predictions", p
assert 0 <= p["chi2_p_value"] <= 1, p
assert abs(sum(p["distribution"].values()) - 1) < 1e-9, p
assert abs(sum(p["reference_distribution"].values()) - 1) < 1e-9, p
PY
ok "gantry drift check (gantry-drift) compared test images with v3's stored profile and v3's predictions"

gantry logs "$A" --rank 1 | grep -q . || fail "rank 1 log is empty"
ok "per-rank logs kept"

B=$(gantry submit "$DATA/job.yaml" --set name=e2e-long --set train.steps=1000000 --quiet) || fail "submit B"
gantry wait "$B" --state RUNNING --timeout 60 >/dev/null || fail "job B never ran"
workers_of() { pgrep -f "gantry-worker.*--job-id $1" >/dev/null; }
wait_for 60 workers_of "$B" || fail "no worker processes for job B"
wait_for 60 grep -qs "step" "$DATA/jobs/$B/attempt-1/rank-0.log" || fail "job B never trained"
gantry cancel "$B" >/dev/null || fail "cancel B"
gantry wait "$B" --timeout 60 >/dev/null
rc=$?
[ $rc -eq 3 ] || fail "wait on cancelled job exited $rc, want 3"
gantry job show "$B" --json | grep -q '"state": "CANCELLED"' || fail "job B not CANCELLED"
workers_of "$B" && fail "worker processes of cancelled job B remain"
ok "running job $B cancelled; no worker left"

gantry down >/dev/null || fail "gantry down"
pgrep -f "$DATA" >/dev/null && { pgrep -af "$DATA"; fail "Gantry processes remain after down"; }
ls "$DATA"/run/*.json >/dev/null 2>&1 && fail "run files remain after down"
ok "gantry down left no process"
echo "$checks passed, 0 failed"
