#!/usr/bin/env bash
# No metric lost (issue 8, item 3): a monitor SIGKILLed while a job trains
# is restarted by the supervisor of `gantry up --detach`; the workers re-send
# what it had not committed, and the history holds every rank-0 point of the
# job exactly once. `gantry watch` says it reconnects and follows the job to
# its end. Waits poll with a deadline.
set -uo pipefail
source "$(dirname "$0")/lib.sh" "${1:-}" spool
pid_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pid'])" "$DATA/run/$1.json"; }
http_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['endpoints']['http'])" "$DATA/run/monitor.json"; }
state_of() { gantry job show "$1" --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['job']['state'])"; }
STEPS=3000 LOG_EVERY=10 EVAL_EVERY=1000
at_step() { grep -qs "rank 0/2 step $2/" "$DATA/jobs/$1/attempt-1/rank-0.log"; }

[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST missing: apt-get install dataset-fashion-mnist"
gantry up --detach --port-base 0 --slots 2 >"$DATA/up.log" 2>&1 || { cat "$DATA/up.log"; fail "gantry up"; }
ok "gantry up --detach"

cat >"$DATA/job.yaml" <<YAML
name: spool-mnist
model: {builtin: mlp, hidden: [512, 512]}
data: {path: $FMNIST, limit: 2048}
resources: {workers: 2}
train:
  steps: $STEPS
  batch_size: 128
  log_every: $LOG_EVERY
  eval_every: $EVAL_EVERY
  optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
checkpoint: {every_steps: 1000}
YAML
J=$(gantry submit "$DATA/job.yaml" --quiet) || fail "submit"
gantry watch "$J" >"$DATA/watch.out" 2>"$DATA/watch.err" &
watch_pid=$!

# SIGKILL the monitor a tenth of the way in; the supervisor restarts it.
wait_for 120 at_step "$J" 300 || fail "job $J never reached step 300"
old=$(pid_of monitor)
kill -9 "$old"
killed_at=$(grep -o "rank 0/2 step [0-9]*/" "$DATA/jobs/$J/attempt-1/rank-0.log" | tail -1)
[ "$(state_of "$J")" = RUNNING ] || fail "job $J was no longer running when the monitor died; make it longer"
new_monitor() { [ -f "$DATA/run/monitor.json" ] && [ "$(pid_of monitor)" != "$old" ] && kill -0 "$(pid_of monitor)"; }
wait_for 60 new_monitor || fail "the supervisor did not restart the monitor"
ok "monitor SIGKILLed at ${killed_at% /} ($old), restarted as $(pid_of monitor)"

succeeded() { [ "$(state_of "$J")" = SUCCEEDED ]; }  # re-read on every poll
wait_for 240 succeeded || fail "job $J did not succeed (state $(state_of "$J"))"
wait "$watch_pid"
rc=$?
[ "$rc" = 0 ] || { cat "$DATA/watch.out" "$DATA/watch.err"; fail "gantry watch exited $rc, want 0"; }
grep -q "reconnect" "$DATA/watch.err" || { cat "$DATA/watch.err"; fail "gantry watch did not say it reconnected"; }
grep -q "step $STEPS/$STEPS" "$DATA/watch.out" || { tail "$DATA/watch.out"; fail "gantry watch did not follow the job to its last step"; }
ok "gantry watch reconnected and followed $J to the end (exit 0)"

# Every rank-0 point exactly once, in the history the HTTP API serves (the
# workers may have had to wait a moment for the last acks: poll).
check_history() {
  curl -sf "$(http_of)/api/jobs/$J/metrics?max_points=100000" >"$DATA/history.json" || return 1
  python3 - "$DATA/history.json" "$STEPS" "$LOG_EVERY" "$EVAL_EVERY" <<'PY'
import json, sys
from collections import Counter
doc = json.load(open(sys.argv[1]))
steps, log_every, eval_every = map(int, sys.argv[2:5])
# series: name -> [[step, time, value], ...] of rank 0, newest attempt
train = Counter(p[0] for p in doc["series"].get("loss", []))
evals = Counter(p[0] for p in doc["series"].get("test_loss", []))
want_train = set(range(log_every, steps + 1, log_every)) | {steps}
want_eval = set(range(eval_every, steps + 1, eval_every)) | {steps}
missing = sorted(want_train - set(train)) + sorted(want_eval - set(evals))
twice = sorted(s for s, n in train.items() if n > 1) + sorted(s for s, n in evals.items() if n > 1)
extra = sorted(set(train) - want_train) + sorted(set(evals) - want_eval)
print(f"rank-0 training points {len(train)}/{len(want_train)}, evaluation points {len(evals)}/{len(want_eval)};"
      f" missing {missing[:10]} twice {twice[:10]} unexpected {extra[:10]}")
sys.exit(0 if not missing and not twice and not extra else 1)
PY
}
wait_for 30 check_history >"$DATA/history.txt" 2>&1 || { cat "$DATA/history.txt"; head -c 600 "$DATA/history.json"; fail "history incomplete or with repeats"; }
ok "every rank-0 point of $J is in the history exactly once: $(tail -1 "$DATA/history.txt")"
# Schema 4 (docs/monitor.md, "Storage and the ingest path"): one row per
# point; a name in metric_sets.names is its u16 length (little endian) then
# its bytes, so x'0400' || 'loss' matches "loss" and not "test_loss".
rows=$(sqlite3 "$DATA/monitor.db" "SELECT COUNT(*) FROM points p JOIN jobs j ON j.id = p.job JOIN metric_sets m ON m.id = p.metric_set WHERE j.job_id='$J' AND p.rank=0 AND instr(m.names, x'04006c6f7373') > 0")
[ "$rows" = $((STEPS / LOG_EVERY)) ] || fail "monitor.db holds $rows rank-0 loss rows, want $((STEPS / LOG_EVERY))"
ok "monitor.db holds $rows rank-0 loss rows, one per logged step"
grep -qs "sending the .* unacknowledged points again" "$DATA"/jobs/"$J"/attempt-1/rank-*.log &&
  echo "  (the workers re-sent points the monitor had lost)"

gantry down >/dev/null || fail "gantry down"
pgrep -f "$DATA" >/dev/null && { pgrep -af "$DATA"; fail "Gantry processes remain after down"; }
ok "gantry down left no process"
echo "$checks passed, 0 failed"
