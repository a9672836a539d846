#!/usr/bin/env bash
# The closed loop of docs/retraining.md on one machine, with the built
# binaries and the Debian Fashion-MNIST (nothing downloaded):
#
#   train a champion -> deploy MODEL@production -> shifted traffic (darker
#   images) -> drift alert on the served inputs -> retraining run on the
#   new shifted shards -> evaluation gate on a shifted held-out set ->
#   promotion -> the deployment reloads the new version -> live accuracy on
#   the shifted stream recovers.
#
# Usage: examples/retrain-on-drift/run.sh [BIN_DIR]   (default: build/bin)
# Prints a timeline (seconds since start) and the accuracy before and after.
# A fresh data directory and free ports; everything is stopped and removed
# at the end (KEEP=1 keeps the data directory). SHIFT="--rotate 1
# --brightness 0.55" picks another shift (make_shifted.py --help).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(cd "${1:-$HERE/../../build/bin}" && pwd) || { echo "no binaries in ${1:-build/bin}: build first" >&2; exit 1; }
export PATH="$BIN:$PATH"
PY=/usr/bin/python3
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
MODEL=fmnist
[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || { echo "Fashion-MNIST missing in $FMNIST: apt-get install dataset-fashion-mnist" >&2; exit 1; }
$PY -c 'import numpy' 2>/dev/null || { echo "numpy missing: apt-get install python3-numpy" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl missing: apt-get install curl" >&2; exit 1; }

DATA=$(mktemp -d /tmp/gantry-retrain-on-drift.XXXXXX)
export GANTRY_DATA_DIR="$DATA"
WORK="$DATA/example"
mkdir -p "$WORK"
cleanup() {
  gantry down --timeout 20 >/dev/null 2>&1
  local left
  left=$(pgrep -f "$DATA" || true)
  [ -n "$left" ] && kill -KILL $left 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $DATA"; else rm -rf "$DATA"; fi
}
trap cleanup EXIT

T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
TIMELINE=()
step() {  # step TEXT: one line of the timeline, printed now too
  local t
  t=$(elapsed)
  TIMELINE+=("$(printf '%7s s  %s' "$t" "$1")")
  printf '[%6s s] %s\n' "$t" "$1"
}
die() {
  echo "STOPPED at $(elapsed) s: $*" >&2
  for f in "$DATA"/logs/*.log "$DATA"/jobs/*/attempt-*/*.log; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}
# wait_until SECONDS WHAT CMD...: polls CMD every 0.5 s, a progress line every 10 s.
wait_until() {
  local limit=$1 what=$2 start=$SECONDS next=$((SECONDS + 10))
  shift 2
  until "$@"; do
    [ $((SECONDS - start)) -lt "$limit" ] || return 1
    if [ $SECONDS -ge $next ]; then
      printf '           ... waiting for %s (%d s)\n' "$what" $((SECONDS - start))
      next=$((SECONDS + 10))
    fi
    sleep 0.5
  done
}
json() { $PY -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# 1. Shifted data, made from the Debian dataset by make_shifted.py: 4 IDX
# shards of 3,000 darker training images (rows 12,000-23,999, which
# the champion never sees), a held-out set of 2,000 shifted test images and
# 1,200 other shifted test images for the prediction traffic.
$PY "$HERE/make_shifted.py" "$WORK/staging" --dataset "$FMNIST" ${SHIFT:-} >"$WORK/make.log" 2>&1 || { cat "$WORK/make.log"; die "make_shifted.py"; }
step "$(tail -n1 "$WORK/make.log")"

gantry up --detach --port-base 0 --slots 2 >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; die "gantry up"; }
MON=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['endpoints']['http'])" "$DATA/run/monitor.json") \
  || die "no monitor http endpoint in $DATA/run/monitor.json"
step "cluster up (gantry up --detach --port-base 0); monitor at $MON"

# 2. The champion: a small MLP on the first 12,000 original training images
# (12,000 rows: its stored drift profile takes KS's asymptotic path).
cat >"$WORK/champion.yaml" <<YAML
name: $MODEL
model: {builtin: mlp, hidden: [64]}
data: {path: $FMNIST, limit: 12000}
resources: {workers: 1}
train: {steps: 300, batch_size: 64, log_every: 100, optimizer: {name: adam, lr: 0.002}}
YAML
J=$(gantry submit "$WORK/champion.yaml" --quiet) || die "submit the champion"
gantry watch "$J" >"$WORK/champion.log" 2>&1 || { tail "$WORK/champion.log"; die "champion job $J failed"; }
gantry ckpt show "$MODEL@latest" --json >"$WORK/v1.json" || die "ckpt show $MODEL@latest"
V1=$(json "d['version']" <"$WORK/v1.json")
CLEAN_ACC=$(json "round(d['metrics']['test_accuracy'], 4)" <"$WORK/v1.json")
gantry ckpt alias set "$MODEL" production "v$V1" >/dev/null || die "alias set"
step "champion $MODEL@v$V1 trained (job $J, 300 steps) and set as production: accuracy $CLEAN_ACC on the original test set"

gantry deploy "$MODEL@production" --sample-rate 1 --timeout 60 >"$WORK/deploy.log" 2>&1 || { cat "$WORK/deploy.log"; die "gantry deploy"; }
URL=$(grep -o -m1 'http://127.0.0.1:[0-9]*' "$WORK/deploy.log")
[ -n "$URL" ] || { cat "$WORK/deploy.log"; die "no address in gantry deploy's output"; }
step "deployed $MODEL@production at $URL, every request sampled to the monitor (--sample-rate 1)"

# 3. The schedule: a drift alert on the model starts a run; the run trains on
# the watched directory's new shards (plus a replay share of older ones),
# warm-started from the champion, and the gate scores challenger and
# champion on the shifted held-out set. The new-data trigger alone would wait
# for a batch of 20 files; the drift alert starts the run sooner, on the
# files that are there.
INCOMING="$WORK/incoming"
mkdir -p "$INCOMING"
cat >"$WORK/retrain.yaml" <<YAML
name: $MODEL-retrain
model: {builtin: mlp, hidden: [64]}
data: {format: shards, path: $INCOMING, test_file: $WORK/staging/holdout-shifted.csv}
resources: {workers: 1}
train: {steps: 300, batch_size: 64, log_every: 100, optimizer: {name: adam, lr: 0.002}}
YAML
cat >"$WORK/schedule.yaml" <<YAML
name: $MODEL-on-drift
model: $MODEL
champion: production
job: retrain.yaml
triggers:
  drift: true
  new_data: {dir: $INCOMING, min_files: 20}
replay: 0.25
evaluation:
  metric: accuracy
  margin: 0.02
  guardrails:
    - {metric: loss, max_drop: 0.5, higher_is_better: false}
YAML
gantry schedule add "$WORK/schedule.yaml" >"$WORK/schedule-add.log" 2>&1 || { cat "$WORK/schedule-add.log"; die "schedule add"; }
step "schedule $MODEL-on-drift added: triggers drift + new data in $INCOMING; gate: accuracy +0.02 on the shifted held-out set"

# 4. The world shifts: labelled shifted shards land in the watched directory
# (each file copied under a dot name and renamed: the listing skips those),
# and the traffic turns into darker images; every row gets its true label as feedback.
for f in "$WORK"/staging/incoming/*; do cp "$f" "$INCOMING/.$(basename "$f")" && mv "$INCOMING/.$(basename "$f")" "$INCOMING/$(basename "$f")"; done
step "4 shifted shards (12,000 images) dropped into $INCOMING"
$PY "$HERE/stream.py" "$URL" "$MODEL" "$WORK/staging/stream-shifted.npz" --tag before >"$WORK/before.json" || die "streaming shifted traffic"
BEFORE=$(json "round(d['accuracy'], 4)" <"$WORK/before.json")
step "1,200 shifted requests with feedback, answered by v$(json "','.join(d['versions'])" <"$WORK/before.json"): live accuracy $BEFORE (server's feedback window: $(json "d['server_live_accuracy']" <"$WORK/before.json"))"

# 5. The loop closes on its own; the script only watches.
drifted() {
  curl -s -m 5 "$MON/api/drift" >"$WORK/drift.json" && $PY - "$WORK/drift.json" "$MODEL" <<'PY'
import json, sys
w = [x for x in json.load(open(sys.argv[1]))["results"]
     if x.get("kind") == "serving" and x.get("dataset") == f"serving:{sys.argv[2]}/{sys.argv[2]}" and x.get("drifted")]
sys.exit(0 if w else 1)
PY
}
wait_until 90 "a drifted serving window on $MON/api/drift" drifted || die "no drifted window: $(head -c 1500 "$WORK/drift.json")"
DRIFT_WHY=$($PY - "$WORK/drift.json" "$MODEL" <<'PY'
import json, sys
w = [x for x in json.load(open(sys.argv[1]))["results"]
     if x.get("kind") == "serving" and x.get("dataset") == f"serving:{sys.argv[2]}/{sys.argv[2]}" and x.get("drifted")][0]
share = w.get("share")
print(f"{w.get('file')} ({w.get('rows')} sampled rows)"
      + (f", {share:.0%} of the features drifted" if isinstance(share, (int, float)) else ""))
PY
)
step "drift detected on serving:$MODEL/$MODEL: $DRIFT_WHY"
alerted() {
  curl -s -m 5 "$MON/api/alerts" >"$WORK/alerts.json" && $PY - "$WORK/alerts.json" "$MODEL" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["alerts"]
sys.exit(0 if any(x["rule"] == "data-drift" and x["job"] == f"serving:{sys.argv[2]}/{sys.argv[2]}"
                  and x["state"] == "firing" for x in a) else 1)
PY
}
wait_until 30 "the data-drift alert" alerted || die "the data-drift alert did not fire: $(cat "$WORK/alerts.json")"
step "alert data-drift firing for serving:$MODEL/$MODEL (the monitor sends it to the coordinator)"

history() { gantry schedule history "$MODEL-on-drift" --json >"$WORK/history.json" 2>/dev/null; }
run_field() { history && json "(lambda r: $1)(d['runs'][0]) if d['runs'] else ''" <"$WORK/history.json"; }
started() { [ -n "$(run_field "r['job_id']" 2>/dev/null)" ]; }
wait_until 30 "the retraining run" started || die "no run: $(gantry schedule history "$MODEL-on-drift")"
step "retraining run 1 started as job $(run_field "r['job_id']"): triggers $(run_field "', '.join(t['kind'] + ' (' + t['detail'] + ')' for t in r['triggers'])"); files: $(run_field "len(r['files'])")"
decided() { local s; s=$(run_field "r['state']" 2>/dev/null); [ -n "$s" ] && [ "$s" != running ]; }
wait_until 150 "the run's job and the gate" decided || die "run not decided: $(gantry schedule history "$MODEL-on-drift")"
STATE=$(run_field "r['state']")
CHAMP_SCORE=$(run_field "round(r['decision']['champion_value'], 4)")
CHALL_SCORE=$(run_field "round(r['decision']['challenger_value'], 4)")
V2=$(run_field "r['decision']['challenger_version']")
step "run 1 $STATE: $(run_field "r['decision']['reason']")"
[ "$STATE" = promoted ] || die "the challenger was not promoted"

alias_moved() { [ "$(gantry ckpt show "$MODEL@production" --json 2>/dev/null | json "d['version']")" = "$V2" ]; }
wait_until 10 "$MODEL@production to move" alias_moved || die "$MODEL@production is not v$V2"
step "$MODEL@production now v$V2 (was v$V1)"
serving_new() {
  curl -s -m 5 "$URL/v2/models/$MODEL" -o "$WORK/model.json" && grep -q "\"versions\":\[\"$V2\"\]" "$WORK/model.json"
}
wait_until 30 "the deployment to reload v$V2" serving_new || die "the deployment does not serve v$V2: $(cat "$WORK/model.json")"
step "deployment $MODEL serves v$V2 (gantry-serve reloaded it when the alias moved)"
listed_new() { [ "$(gantry deployments --json --rate-window 0 | json "d['deployments'][0]['version']")" = "$MODEL:$V2" ]; }
wait_until 10 "gantry deployments to show v$V2" listed_new || die "gantry deployments does not show $MODEL:$V2"

$PY "$HERE/stream.py" "$URL" "$MODEL" "$WORK/staging/stream-shifted.npz" --tag after >"$WORK/after.json" || die "streaming shifted traffic again"
AFTER=$(json "round(d['accuracy'], 4)" <"$WORK/after.json")
step "the same 1,200 shifted requests, answered by v$(json "','.join(d['versions'])" <"$WORK/after.json"): live accuracy $AFTER (server's feedback window: $(json "d['server_live_accuracy']" <"$WORK/after.json"))"

echo
gantry schedule history "$MODEL-on-drift"
echo
echo "Timeline (seconds since start):"
printf '%s\n' "${TIMELINE[@]}"
echo
echo "Accuracy:"
echo "  champion v$V1 on the original test set (10,000 images):      $CLEAN_ACC"
echo "  held-out shifted set (2,000), scored by the run: champion v$V1 $CHAMP_SCORE, challenger v$V2 $CHALL_SCORE"
echo "  live, 1,200 shifted requests vs their true labels: before $BEFORE (v$V1), after $AFTER (v$V2)"
gantry down --timeout 20 >/dev/null 2>&1 || die "gantry down"
echo "closed loop done in $(elapsed) s"
