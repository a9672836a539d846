#!/usr/bin/env bash
# Issue 11, as a user meets it: train a small Fashion-MNIST model on the
# embedded cluster, `gantry deploy` it (a real gantry-serve, launched and
# kept up by the coordinator), predict and give feedback with curl, kill -9
# the server and check that it serves again on the same address within 5 s
# with no user command, then undeploy and stop the cluster with nothing left.
set -uo pipefail
source "$(dirname "$0")/lib.sh" "${1:-}" deploy

[ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST missing: apt-get install dataset-fashion-mnist"
command -v curl >/dev/null || fail "curl missing: apt-get install curl"

gantry up --detach --port-base 0 --slots 2 >"$DATA/up.log" 2>&1 || { cat "$DATA/up.log"; fail "gantry up"; }

cat >"$DATA/job.yaml" <<YAML
name: served
model: {builtin: mlp, hidden: [32]}
data: {path: $FMNIST, limit: 2048}
resources: {workers: 1}
train: {steps: 20, batch_size: 32, log_every: 10, optimizer: {name: sgd, lr: 0.05}}
checkpoint: {every_steps: 10}
YAML
J=$(gantry submit "$DATA/job.yaml" --quiet) || fail "submit"
gantry watch "$J" >"$DATA/watch.log" 2>&1 || { cat "$DATA/watch.log"; fail "job $J did not succeed"; }
ok "trained served (job $J)"

gantry deploy served@latest --max-batch 16 --timeout 60 >"$DATA/deploy.log" 2>&1 \
  || { cat "$DATA/deploy.log"; fail "gantry deploy"; }
grep -q "serving served@latest (served:2) at http://127.0.0.1:" "$DATA/deploy.log" \
  || { cat "$DATA/deploy.log"; fail "deploy did not report the address and version"; }
url=$(grep -o -m1 'http://127.0.0.1:[0-9]*' "$DATA/deploy.log" | head -n1)
ok "deployed at $url"

# One 784-pixel row (values in the raw 0..255 range the server normalises).
body=$(python3 -c 'import json; print(json.dumps({"id": "r1", "inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": [float((i * 7) % 256) for i in range(784)]}]}))')
infer() { curl -s -m 5 -o "$DATA/infer.json" -w '%{http_code}' "$url/v2/models/served/infer" -d "$body"; }
[ "$(infer)" = 200 ] || { cat "$DATA/infer.json"; fail "infer did not answer 200"; }
grep -q '"model_version":"2"' "$DATA/infer.json" || { cat "$DATA/infer.json"; fail "response does not name version 2"; }
code=$(curl -s -m 5 -o "$DATA/feedback.json" -w '%{http_code}' "$url/v2/models/served/feedback" -d '{"id": "r1", "label": 3}')
[ "$code" = 200 ] || { cat "$DATA/feedback.json"; fail "feedback answered $code"; }
grep -q '"window_outcomes":1' "$DATA/feedback.json" || { cat "$DATA/feedback.json"; fail "feedback not counted"; }
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$url/v2/models/served/infer" -d '{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}')
[ "$code" = 400 ] || fail "a wrong shape answered $code, not 400"
ok "curl prediction names the version, feedback counted, bad shape refused"

field() { gantry deployments --json --rate-window 0 | python3 -c "import json, sys; print(json.load(sys.stdin)['deployments'][0]['$1'])"; }
pid=$(field pid) || fail "gantry deployments --json"
[ "$(field health)" = ready ] || fail "deployment not ready: $(gantry deployments)"
kill -KILL "$pid" || fail "kill -9 $pid"
t0=$(date +%s.%N)
serving_again() { [ "$(infer)" = 200 ]; }
wait_for 5 serving_again || fail "not serving again within 5 s of kill -9 ($(gantry deployments))"
took=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
[ "$(field pid)" != "$pid" ] || fail "the killed process still answers?"
[ "$(field restarts)" = 1 ] || fail "restart not counted: $(gantry deployments)"
ok "kill -9 of gantry-serve: serving again at $url after ${took} s, restart counted"

gantry undeploy served >/dev/null || fail "undeploy"
! kill -0 "$(cat "$DATA"/deployments/served/ready.json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' 2>/dev/null || echo 999999)" 2>/dev/null \
  || fail "gantry-serve still running after undeploy"
gantry deployments | grep -q "no deployments" || fail "deployment still listed after undeploy"
gantry down --timeout 20 >/dev/null || fail "gantry down"
! pgrep -f "$DATA" >/dev/null || { pgrep -af "$DATA"; fail "processes left after gantry down"; }
ok "undeployed and stopped; nothing left"
echo "deploy end to end: $checks checks passed"
