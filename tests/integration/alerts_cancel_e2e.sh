#!/usr/bin/env bash
# End to end: a job whose loss turns NaN is cancelled by its own alert rule.
# Starts the embedded cluster on free ports in a fresh data dir, submits a
# Fashion-MNIST job with a huge learning rate and a spec `alerts:` rule
# (nonfinite on loss, action: cancel), and checks that the job ends
# CANCELLED and that `gantry alerts` lists the firing rule. Waits poll a
# condition with a deadline.
set -uo pipefail
source "$(dirname "$0")/lib.sh" "${1:-}" alerts-e2e

[ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || { echo "SKIP: Fashion-MNIST missing"; exit 0; }
# No cluster rules (the built-in ones include a NaN-cancel rule too): only
# the spec's own rule can cancel the job.
mkdir -p "$DATA" && echo "alerts: []" >"$DATA/alerts.yaml"
gantry up --detach --port-base 0 --slots 2 >"$DATA/up.log" 2>&1 || { cat "$DATA/up.log"; fail "gantry up"; }
grep -q "http http://127.0.0.1:" <<<"$(gantry status)" || fail "gantry status shows no monitor http endpoint"

cat >"$DATA/job.yaml" <<YAML
name: nan-loss
model: {builtin: mlp, hidden: [32]}
data: {path: $FMNIST, limit: 2048}
resources: {workers: 1}
train:
  steps: 100000
  batch_size: 32
  log_every: 1
  optimizer: {name: sgd, lr: 1.0e+30}
alerts:
  - name: nan-cancel
    kind: nonfinite
    metric: loss
    severity: critical
    action: cancel
YAML

# A bad rule is refused at submit, naming the field.
sed 's/action: cancel/action: explode/' "$DATA/job.yaml" >"$DATA/bad.yaml"
out=$(gantry submit "$DATA/bad.yaml" 2>&1) && fail "accepted a bad alert rule"
grep -q "alerts\[0\].action" <<<"$out" || fail "bad rule error does not name alerts[0].action: $out"

J=$(gantry submit "$DATA/job.yaml" --quiet) || fail "submit"
state() { gantry job show "$J" --json 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j.get("job", j)["state"])'; }
is_cancelled() { [ "$(state)" = CANCELLED ]; }
wait_for 180 is_cancelled || fail "job $J is $(state), not CANCELLED"
alerts=$(gantry alerts --json) || fail "gantry alerts"
ALERTS="$alerts" python3 - "$J" <<'PY' || fail "gantry alerts does not list nan-cancel for $J: $alerts"
import json, os, sys
job = sys.argv[1]
a = json.loads(os.environ["ALERTS"])["alerts"]
assert any(x["rule"] == "nan-cancel" and x["job_id"] == job and x["scope"] == "job" for x in a), a
assert not any(x["scope"] == "cluster" for x in a), a
PY
gantry alerts | grep -q nan-cancel || fail "gantry alerts table lacks nan-cancel"
echo "ok - NaN-loss job $J cancelled by its alert rule"
