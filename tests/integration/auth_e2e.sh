#!/usr/bin/env bash
# Issue 13 item 5, as a user meets it: `gantry up` with `auth: curve` makes
# the keys and runs every service with CURVE; a job's worker reaches
# storage, monitor and coordinator with the keys it is handed (GANTRY_KEYS);
# a client with a key of its own is refused (and its `gantry down` stops
# nothing) until its key is appended to authorized_keys, without a restart.
set -uo pipefail
source "$(dirname "$0")/lib.sh" "${1:-}" auth
PY=/usr/bin/python3

printf 'auth: curve\n' >"$DATA/cluster.yaml"
gantry up --detach --port-base 0 --slots 2 --config "$DATA/cluster.yaml" >"$DATA/up.log" 2>&1 ||
  { cat "$DATA/up.log"; fail "gantry up"; }
for f in server.key server.pub client.key authorized_keys; do
  [ "$(stat -c %a "$DATA/keys/$f")" = 600 ] || fail "keys/$f is not mode 600"
done
[ "$(stat -c %a "$DATA/keys")" = 700 ] || fail "keys/ is not mode 700"
for s in coordinator storage monitor; do
  grep -q '"auth": "curve"' "$DATA/run/$s.json" || fail "run/$s.json does not say auth: curve"
done
gantry status >"$DATA/status.log" 2>&1 || { cat "$DATA/status.log"; fail "status with the cluster's own keys"; }
ok "gantry up made the keys (0700/0600); every service runs with CURVE; the CLI here uses them"

# A toy job (label = x0 + x1 > 0): its worker talks CURVE to all three.
$PY - "$DATA/train.csv" "$DATA/test.csv" <<'PYEOF'
import random, sys
for path, seed in ((sys.argv[1], 1), (sys.argv[2], 2)):
    r = random.Random(seed)
    with open(path, "w") as f:
        f.write("x0,x1,x2,x3,label\n")
        for _ in range(300):
            x = [r.uniform(-1, 1) for _ in range(4)]
            f.write(",".join(f"{v:.4f}" for v in x) + f",{int(x[0] + x[1] > 0)}\n")
PYEOF
cat >"$DATA/job.yaml" <<YAML
name: toy
model: {builtin: mlp, hidden: [8]}
data: {format: csv, path: $DATA, train_file: train.csv, test_file: test.csv}
resources: {workers: 1}
train: {steps: 20, batch_size: 32, log_every: 10, optimizer: {name: sgd, lr: 0.2}}
checkpoint: {every_steps: 10, model: auth-toy}
YAML
A=$(gantry submit "$DATA/job.yaml" --quiet) || fail "submit"
gantry watch "$A" >"$DATA/watch.log" 2>&1 || { cat "$DATA/watch.log"; fail "job $A did not succeed"; }
grep -q "SUCCEEDED" "$DATA/watch.log" || fail "watch did not report SUCCEEDED"
gantry watch "$A" --json | grep -q '"loss"' || fail "no metrics of $A reached the monitor"
gantry ckpt list auth-toy --json | grep -q "\"job_id\": \"$A\"" || fail "no checkpoint of $A in storage"
ok "job $A ran with CURVE: metrics in the monitor, checkpoints in storage"

# A deployment: gantry-serve loads from storage, follows its feed and
# reports to the monitor's ingest, all over CURVE with the keys the
# coordinator hands it.
gantry deploy auth-toy@latest --sample-rate 1 --timeout 60 >"$DATA/deploy.log" 2>&1 ||
  { cat "$DATA/deploy.log"; fail "gantry deploy"; }
url=$(grep -o -m1 'http://127.0.0.1:[0-9]*' "$DATA/deploy.log" | head -n1)
code=$(curl -s -m 5 -o "$DATA/infer.json" -w '%{http_code}' "$url/v2/models/auth-toy/infer" \
  -d '{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0.5, 0.5, 0, 0]}]}')
[ "$code" = 200 ] || { cat "$DATA/infer.json"; fail "infer answered $code"; }
mon=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['endpoints']['http'])" "$DATA/run/monitor.json")
reported() { curl -s -m 5 "$mon/api/deployments" | grep -q '"deployment":"auth-toy"'; }
wait_for 20 reported || fail "gantry-serve's reports did not reach the monitor"
gantry undeploy auth-toy >/dev/null 2>&1 || fail "undeploy"
ok "a deployment loads from storage and reports to the monitor over CURVE"

# A client with a key of its own (another host, say).
gantry keygen "$DATA/laptop" >"$DATA/keygen.log" || fail "keygen"
cp "$DATA/keys/server.pub" "$DATA/laptop/"
pub=$(sed -n 's/^public = //p' "$DATA/laptop/client.key")
out=$(gantry --keys "$DATA/laptop" jobs 2>&1) && fail "an unauthorised key was served: $out"
grep -q "authorized_keys" <<<"$out" || fail "refusal does not say what to do: $out"
out=$(gantry --keys "$DATA/laptop" down 2>&1) && fail "down with an unauthorised key succeeded: $out"
gantry status >/dev/null 2>&1 || fail "down with an unauthorised key stopped something"
ok "an unauthorised key is refused, naming authorized_keys; its down stops nothing"

echo "$pub laptop" >>"$DATA/keys/authorized_keys"
gantry --keys "$DATA/laptop" jobs --json | grep -q "$A" || fail "the key was not accepted once authorised"
ok "appending the key to authorized_keys lets the client in, without a restart"

gantry down --timeout 20 >/dev/null || fail "down with the cluster's keys"
echo "all $checks checks passed"
