#!/usr/bin/env bash
# bench/run.sh cli: start-up of a CLI command against a running cluster.
# `gantry` does not link LibTorch; `gantry-drift` is the same CLI with the
# drift commands and therefore LibTorch (what every command paid before
# the split). Both run `status --json` against the same cluster, N times,
# alternating; medians.
#   GANTRY_BUILD_DIR (default build/)   N (default 20)
# Figure (one JSON line):
#   status_seconds_vs_with_libtorch   gantry-drift's time / gantry's (> 1: gantry faster)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${GANTRY_BUILD_DIR:-$ROOT/build}
N=${N:-20}
GANTRY=$BUILD/bin/gantry DRIFT=$BUILD/bin/gantry-drift
for f in "$GANTRY" "$DRIFT"; do [ -x "$f" ] || { echo "no $f: build first" >&2; exit 1; }; done
TMP=$(mktemp -d /tmp/gantry-bench-cli.XXXXXX)
cleanup() { "$GANTRY" --data-dir "$TMP/cluster" down >/dev/null 2>&1 || true; rm -rf "$TMP"; }
trap cleanup EXIT
"$GANTRY" --data-dir "$TMP/cluster" up --detach --port-base 0 >/dev/null
# once: seconds of one `status --json` by PROGRAM
once() {
  local t0=$EPOCHREALTIME
  "$1" --data-dir "$TMP/cluster" status --json >/dev/null
  echo "$t0 $EPOCHREALTIME"
}
: >"$TMP/raw"
for _ in $(seq "$N"); do
  echo "gantry $(once "$GANTRY")" >>"$TMP/raw"
  echo "drift $(once "$DRIFT")" >>"$TMP/raw"
done
python3 - "$TMP/raw" <<'PY'
import json, sys, statistics as st
g, d = [], []
for line in open(sys.argv[1]):
    k, t0, t1 = line.split(); (g if k == "gantry" else d).append(float(t1) - float(t0))
sp = lambda v: {"min": round(min(v), 4), "median": round(st.median(v), 4), "max": round(max(v), 4)}
print(json.dumps({"bench": "cli", "metric": "status_seconds_vs_with_libtorch", "value": round(st.median(d) / st.median(g), 2),
                  "unit": "x", "n": len(g), "gantry": sp(g), "baseline": sp(d),
                  "note": "seconds of `status --json` against a running cluster; gantry = the CLI without LibTorch, "
                          "baseline = gantry-drift (the same CLI linked with LibTorch, as gantry was before); > 1: gantry faster"}))
PY
