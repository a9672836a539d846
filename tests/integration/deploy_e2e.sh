#!/usr/bin/env bash
# Issue 11, as a user meets it: train a small Fashion-MNIST model on the
# embedded cluster, `gantry deploy` it (a real gantry-serve, launched and
# kept up by the coordinator), predict and give feedback with curl, kill -9
# the server and check that it serves again on the same address within 5 s
# with no user command, then undeploy and stop the cluster with nothing left.
# On the way, the requests show on the monitor (/metrics, /api/deployments):
# gantry-serve reports to the monitor's ingest, as the coordinator wires it.
set -uo pipefail
source "$(dirname "$0")/lib.sh" "${1:-}" deploy

[ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST missing: apt-get install dataset-fashion-mnist"
command -v curl >/dev/null || fail "curl missing: apt-get install curl"

gantry up --detach --port-base 0 --slots 2 >"$DATA/up.log" 2>&1 || { cat "$DATA/up.log"; fail "gantry up"; }

# 12,000 training rows: the drift profile stored with each version then
# takes KS's asymptotic path (over 10,000 reference rows), so a serving
# window is compared in a fraction of a second instead of the exact
# distribution's seconds per feature (drift/ks.h).
cat >"$DATA/job.yaml" <<YAML
name: served
model: {builtin: mlp, hidden: [32]}
data: {path: $FMNIST, limit: 12000}
resources: {workers: 1}
train: {steps: 20, batch_size: 32, log_every: 10, optimizer: {name: sgd, lr: 0.05}}
checkpoint: {every_steps: 10}
YAML
J=$(gantry submit "$DATA/job.yaml" --quiet) || fail "submit"
gantry watch "$J" >"$DATA/watch.log" 2>&1 || { cat "$DATA/watch.log"; fail "job $J did not succeed"; }
ok "trained served (job $J)"

gantry deploy served@latest --max-batch 16 --sample-rate 1 --timeout 60 >"$DATA/deploy.log" 2>&1 \
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

# The monitor sees them: gantry-serve reports every second over the ingest.
mon=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['endpoints']['http'])" "$DATA/run/monitor.json") \
  || fail "no monitor http endpoint in $DATA/run/monitor.json"
on_metrics() {
  curl -s -m 5 "$mon/metrics" >"$DATA/metrics.txt" &&
    grep -q '^gantry_serving_requests_total{deployment="served",model="served",version="2",code="400"} 1$' "$DATA/metrics.txt" &&
    grep -q '^gantry_serving_requests_total{deployment="served",model="served",version="2",code="200"} 1$' "$DATA/metrics.txt" &&
    grep -q '^gantry_serving_feedback_labels_total{deployment="served",model="served",version="2"} 1$' "$DATA/metrics.txt"
}
wait_for 10 on_metrics || { grep gantry_serving "$DATA/metrics.txt"; fail "the requests did not show on the monitor's /metrics"; }
grep -q '^gantry_serving_input_anomalies_total{deployment="served",model="served",version="2",kind="wrong_shape"} 1$' "$DATA/metrics.txt" \
  || { grep gantry_serving "$DATA/metrics.txt"; fail "wrong shape not counted on /metrics"; }
grep -q '^gantry_serving_accuracy{deployment="served",model="served",version="2"} ' "$DATA/metrics.txt" \
  || fail "no live accuracy on /metrics"
if command -v promtool >/dev/null; then
  promtool check metrics <"$DATA/metrics.txt" >"$DATA/promtool.txt" 2>&1 || { cat "$DATA/promtool.txt"; fail "promtool check metrics"; }
fi
on_api() {
  curl -s -m 5 "$mon/api/deployments" >"$DATA/deployments.json" && python3 - "$DATA/deployments.json" <<'PY'
import json, sys
d = [x for x in json.load(open(sys.argv[1]))["deployments"] if x["deployment"] == "served"]
assert d, "served not listed"
d = d[0]
assert d["version"] == "2" and d["requests"] == 2 and d["errors"] == 1, d
assert d["errors_by_code"] == {"400": 1}, d
assert d["feedback_labels"] == 1 and d["accuracy"] is not None, d
# --sample-rate 1: the answered request went to the drift windows (counted
# in the report after the one that carried it).
assert d["samples_sent"] >= 1, d
PY
}
wait_for 10 on_api || { cat "$DATA/deployments.json"; fail "/api/deployments does not show the deployment"; }
ok "the monitor shows the deployment's requests, errors, accuracy and samples ($mon/metrics, /api/deployments)"

# Input quality against the served version's stored drift profile: the
# synthetic row above has pixels the training images never had there.
grep -q '^gantry_serving_input_anomalies_total{deployment="served",model="served",version="2",kind="out_of_range"} [1-9]' "$DATA/metrics.txt" \
  || { grep gantry_serving_input "$DATA/metrics.txt"; fail "no out-of-range input counted against the version's profile"; }
# A drift window (the monitor's default 1,000 rows) of such rows, all
# sampled (--sample-rate 1): the window is compared with the profile and
# flagged.
python3 - "$url" <<'PY' || fail "sending a window of requests"
import json, sys, urllib.request
for r in range(63):  # 63 requests of 16 rows: 1,008 rows
    rows = [[float((i * 7 + 13 * (r * 16 + k)) % 256) for i in range(784)] for k in range(16)]
    body = json.dumps({"inputs": [{"name": "input", "shape": [16, 784], "datatype": "FP32", "data": rows}]}).encode()
    with urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/v2/models/served/infer", body), timeout=10) as f:
        assert f.status == 200
PY
on_drift() {
  curl -s -m 5 "$mon/api/drift" >"$DATA/drift.json" && python3 - "$DATA/drift.json" <<'PY'
import json, sys
w = [x for x in json.load(open(sys.argv[1]))["results"] if x.get("kind") == "serving"]
assert w, "no serving window yet"
w = w[0]
assert w["dataset"] == "serving:served/served" and w["version"] == "2" and w["rows"] == 1000, w
assert w["drifted"] and any(f["name"] == "predicted_class" for f in w["features"]), w
PY
}
wait_for 30 on_drift || { head -c 2000 "$DATA/drift.json"; fail "no drifted serving window on /api/drift"; }
curl -s -m 5 "$mon/metrics" | grep -q '^gantry_drift_detected{dataset="serving:served/served"} 1$' \
  || fail "the serving window's drift is not on /metrics"
on_alert() {
  curl -s -m 5 "$mon/api/alerts" >"$DATA/alerts.json" && python3 - "$DATA/alerts.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["alerts"]
assert any(x["rule"] == "data-drift" and x["job"] == "serving:served/served" and x["state"] == "firing" for x in a), a
PY
}
wait_for 10 on_alert || { cat "$DATA/alerts.json"; fail "the drift rule did not fire for the serving window"; }
ok "range checks against the stored profile; a window of 1000 sampled requests compared with it and flagged (/api/drift, /metrics, the data-drift rule)"

field() { gantry deployments --json --rate-window 0 | python3 -c "import json, sys; print(json.load(sys.stdin)['deployments'][0]['$1'])"; }
pid=$(field pid) || fail "gantry deployments --json"
[ "$(field health)" = ready ] || fail "deployment not ready: $(gantry deployments)"
tr '\0' '\n' <"/proc/$pid/environ" | grep -q '^GLIBC_TUNABLES=.*glibc.malloc.tcache_count=' \
  || fail "gantry-serve was not started with the malloc cache setting"
# REQ/S comes from the server's statistics route: non-zero under traffic.
( end=$((SECONDS + 4)); while [ $SECONDS -lt $end ]; do infer >/dev/null; done ) &
loader=$!
rate=$(gantry deployments --json --rate-window 1.5 | python3 -c "import json, sys; print(json.load(sys.stdin)['deployments'][0]['request_rate'])")
wait "$loader"
python3 -c "import sys; r = float(sys.argv[1]); assert r > 0, r" "$rate" 2>/dev/null \
  || fail "gantry deployments shows no request rate under traffic: $rate"
ok "gantry deployments: ready, $rate requests/s under traffic; malloc cache set"
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
