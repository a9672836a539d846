#!/usr/bin/env bash
# Issue 12, as a user meets it: a retraining schedule on a real cluster with
# a tiny model. New data starts a first run (no champion: promoted above the
# floor); `gantry schedule trigger` starts a second one that warm-starts from
# the champion, scores challenger and champion on the same held-out set and
# records the gate's decision in `history`; a new shard starts a third run on
# exactly that shard; an alert naming the model starts a fourth; `gantry
# ckpt alias set` rolls the alias back.
set -uo pipefail
source "$(dirname "$0")/lib.sh" "${1:-}" retrain
PY=/usr/bin/python3

gantry up --detach --port-base 0 --slots 2 >"$DATA/up.log" 2>&1 || { cat "$DATA/up.log"; fail "gantry up"; }

# A toy problem: label = x0 + x1 > 0, 4 features; 2 shards and a held-out set.
mkdir -p "$DATA/incoming" "$DATA/holdout"
shard() {  # shard FILE SEED ROWS
  $PY - "$1" "$2" "$3" <<'PYEOF'
import random, sys
path, seed, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
with open(path + ".tmp", "w") as f:
    f.write("x0,x1,x2,x3,label\n")
    for _ in range(rows):
        x = [r.uniform(-1, 1) for _ in range(4)]
        f.write(",".join(f"{v:.4f}" for v in x) + f",{int(x[0] + x[1] > 0)}\n")
import os; os.rename(path + ".tmp", path)
PYEOF
}
shard "$DATA/holdout/test.csv" 99 300
cat >"$DATA/job.yaml" <<YAML
name: toy
model: {builtin: mlp, hidden: [16]}
data: {format: shards, path: incoming, test_file: $DATA/holdout/test.csv}
resources: {workers: 1}
train: {steps: 40, batch_size: 32, log_every: 20, optimizer: {name: sgd, lr: 0.2}}
YAML
cat >"$DATA/schedule.yaml" <<YAML
name: toy-retrain
model: toy
job: job.yaml
triggers:
  new_data: {dir: incoming, min_files: 1}
  alerts: [toy-accuracy-low]
replay: 0.5
evaluation: {metric: accuracy, margin: 0.0, floor: 0.6}
YAML
# The first batch is there before the schedule, so its first look sees both files.
shard "$DATA/incoming/part-0000.csv" 1 400
shard "$DATA/incoming/part-0001.csv" 2 400
gantry schedule add "$DATA/schedule.yaml" >"$DATA/add.log" 2>&1 || { cat "$DATA/add.log"; fail "schedule add"; }
gantry schedule list | grep -q "toy-retrain" || fail "schedule not listed"
sed 's/margin: 0.0/margin: -1/; s/name: toy-retrain/name: bad/' "$DATA/schedule.yaml" >"$DATA/bad.yaml"
out=$(gantry schedule add "$DATA/bad.yaml" 2>&1) && fail "accepted a negative margin"
grep -q "evaluation.margin must be >= 0" <<<"$out" || fail "bad schedule error does not name the field: $out"
ok "schedule added; a bad one refused naming evaluation.margin"

alias_version() { gantry ckpt show "toy@production" --json | $PY -c "import json,sys; print(json.load(sys.stdin)['version'])"; }
history_json() { gantry schedule history toy-retrain --json; }
# run N's field F (python expression on the run `r`)
run_field() { history_json | $PY -c "import json,sys; runs=json.load(sys.stdin)['runs']; r=runs[$1-1] if len(runs)>=$1 else None; print($2)"; }
settled() { local s; s=$(run_field "$1" "r['state'] if r else 'none'"); [ "$s" != running ] && [ "$s" != none ]; }

t0=$SECONDS
wait_for 60 settled 1 || fail "run 1 did not finish: $(gantry schedule history toy-retrain)"
[ "$(run_field 1 "r['state']")" = promoted ] || fail "run 1 not promoted: $(gantry schedule history toy-retrain)"
[ "$(run_field 1 "r['triggers'][0]['kind']")" = new_data ] || fail "run 1 not started by new data"
[ "$(run_field 1 "sorted(r['files'])")" = "['part-0000.csv', 'part-0001.csv']" ] || fail "run 1 files: $(run_field 1 "r['files']")"
v1=$(run_field 1 "r['decision']['challenger_version']")
[ "$(alias_version)" = "$v1" ] || fail "production is not v$v1 after run 1"
ok "new data -> run 1 (first model, floor 0.6) promoted: toy@production = v$v1 ($((SECONDS - t0)) s)"

gantry schedule trigger toy-retrain >/dev/null || fail "schedule trigger"
wait_for 60 settled 2 || fail "run 2 did not finish: $(gantry schedule history toy-retrain)"
state2=$(run_field 2 "r['state']")
[ "$(run_field 2 "r['triggers'][0]['kind']")" = manual ] || fail "run 2 not manual"
[ "$(run_field 2 "r['decision']['champion_version']")" = "$v1" ] || fail "run 2 champion is not v$v1: $(history_json)"
consistent=$(run_field 2 "(r['decision']['challenger_value'] > r['decision']['champion_value']) == r['decision']['promote']")
[ "$consistent" = True ] || fail "run 2's decision does not follow its scores: $(history_json)"
job2=$(run_field 2 "r['job_id']")
gantry logs "$job2" | grep -q "warm start from toy@v$v1" || fail "run 2 did not warm-start from v$v1"
gantry logs "$job2" | grep -q "champion toy@v$v1 on the held-out set" || fail "run 2 did not score the champion"
gantry schedule history toy-retrain | grep -q "$state2" || fail "history table lacks run 2"
ok "trigger -> run 2 warm-started from v$v1, both scored on the held-out set: $state2 ($(run_field 2 "r['decision']['reason']"))"

champion=$(alias_version)
shard "$DATA/incoming/part-0002.csv" 3 400
wait_for 60 settled 3 || fail "run 3 did not finish: $(gantry schedule history toy-retrain)"
[ "$(run_field 3 "r['files']")" = "['part-0002.csv']" ] || fail "run 3 files: $(run_field 3 "r['files']")"
gantry logs "$(run_field 3 "r['job_id']")" | grep -q "retrain: 2 of 3 shards" || fail "run 3 did not train on the new shard plus one replayed"
ok "a new shard -> run 3 on that shard plus a replayed one: $(run_field 3 "r['state']")"

# A metric alert names the schedule's model (its `model` label): the monitor
# reports it firing to the coordinator, which starts run 4 for it.
cat >"$DATA/watched.yaml" <<YAML
name: toy-serving-stand-in
model: {builtin: mlp, hidden: [16]}
data: {format: shards, path: $DATA/incoming, test_file: $DATA/holdout/test.csv}
resources: {workers: 1}
train: {steps: 5, batch_size: 32, log_every: 1}
checkpoint: {model: other}
alerts:
  - {name: toy-accuracy-low, kind: threshold, metric: loss, op: ">", value: -1, labels: {model: toy}}
YAML
gantry submit "$DATA/watched.yaml" --quiet >/dev/null || fail "submit the alerting job"
wait_for 60 settled 4 || fail "no run 4 from the alert: $(gantry schedule history toy-retrain); alerts: $(gantry alerts)"
[ "$(run_field 4 "r['triggers'][0]['kind']")" = metric ] || fail "run 4 not started by the alert: $(history_json)"
ok "alert toy-accuracy-low (model toy) -> run 4: $(run_field 4 "r['state']") ($(run_field 4 "r['triggers'][0]['detail']"))"

gantry schedule history toy-retrain

# Rollback: the alias back to run 1's version, as a person would.
gantry ckpt alias set toy production "v$v1" >/dev/null || fail "ckpt alias set"
[ "$(alias_version)" = "$v1" ] || fail "rollback did not restore v$v1"
gantry schedule pause toy-retrain >/dev/null || fail "pause"
gantry schedule list --json | grep -q '"paused": true' || fail "not paused"
gantry schedule trigger toy-retrain 2>"$DATA/trigger.err" && fail "trigger of a paused schedule accepted"
grep -q "is paused" "$DATA/trigger.err" || fail "paused trigger error: $(cat "$DATA/trigger.err")"
gantry schedule rm toy-retrain >/dev/null || fail "rm"
[ "$(run_field 3 "r['state']")" != none ] || fail "history gone after rm"
ok "rollback to v$v1 (champion was v$champion); pause refuses triggers; rm keeps the history"
gantry down --timeout 20 >/dev/null || fail "gantry down"
echo "retrain end to end: $checks checks passed in $SECONDS s"
