#!/usr/bin/env bash
# bench/run.sh drift: bench_drift (Gantry vs a sort-based implementation),
# then the same arrays through scipy's ks_2samp + wasserstein_distance
# (bench/monitor/drift_vs_scipy.py) when a python3 with scipy is found.
#   $1 = path of bench_drift; $2 = rounds (3)
set -euo pipefail
BIN=${1:?usage: drift.sh BENCH_BINARY [rounds]}
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$BIN" --rounds "$ROUNDS" --dump "$TMP"
for py in "${GANTRY_PYTHON:-}" /usr/bin/python3 python3; do
  [ -n "$py" ] || continue
  if "$py" -c 'import scipy.stats' 2>/dev/null; then
    "$py" "$ROOT/bench/monitor/drift_vs_scipy.py" "$TMP" 1
    exit 0
  fi
done
echo "# drift: no python3 with scipy (apt install python3-scipy); scipy comparison skipped" >&2
