#!/usr/bin/env bash
# bench/run.sh blas: the demo job's training loop (gantry-worker under
# mpirun, no services) with each Debian OpenBLAS build and the reference
# Netlib BLAS as libblas.so.3, chosen per run with LD_LIBRARY_PATH (the
# system's libblas.so.3 alternative is left as it is). Alternating rounds,
# medians; this is how docs/dependencies.md picked the variant.
#   GANTRY_BUILD_DIR (default build/)  ROUNDS (3)  STEPS (468 = one epoch at 2 ranks)
# Figures: samples/s of the chosen variant (OpenMP) vs each other one, 2 ranks x 1
# thread and 1 rank x 2 threads; the chosen one vs the reference BLAS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${GANTRY_BUILD_DIR:-$ROOT/build}
ROUNDS=${ROUNDS:-3} STEPS=${STEPS:-468}
WORKER=$BUILD/bin/gantry-worker
LIB=/usr/lib/x86_64-linux-gnu
[ -x "$WORKER" ] || { echo "no $WORKER: build first" >&2; exit 1; }
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
TMP=$(mktemp -d /tmp/gantry-bench-blas.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
VARIANTS=()
for v in openblas-openmp openblas-serial openblas-pthread blas; do
  [ -e "$LIB/$v/libblas.so.3" ] && VARIANTS+=("$v")
done

# run VARIANT RANKS THREADS -> samples/s over the training loop (rank 0's windows)
run() {
  local spec=$TMP/spec-$2-$3.yaml logs=$TMP/logs-$RANDOM
  sed -e "s/^  workers: .*/  workers: $2/" -e "s/^  threads: .*/  threads: $3/" -e "s/^  steps: .*/  steps: $STEPS/" \
      -e "s/^  eval_every: .*/  eval_every: 0/" -e "s/^  log_every: .*/  log_every: 52/" \
      -e "s/^  every_steps: .*/  every_steps: 0/" "$ROOT/configs/jobs/fashion_mnist.yaml" >"$spec"
  # No OPENBLAS_NUM_THREADS: the worker itself must make BLAS follow train.threads.
  LD_LIBRARY_PATH=$LIB/$1 OMP_NUM_THREADS=$3 mpirun -np "$2" --oversubscribe --bind-to none \
    -x LD_LIBRARY_PATH -x OMP_NUM_THREADS "$WORKER" --job-id bench --attempt 1 --spec "$spec" \
    --storage "" --monitor "" --log-dir "$logs" >/dev/null
  grep -q "BLAS: .*$LIB/$1/" "$logs/rank-0.log" || { echo "blas: $1 was not the BLAS in use" >&2; grep BLAS "$logs/rank-0.log" >&2; exit 1; }
  python3 - "$logs/rank-0.log" "$2" <<'PY'
import re, sys
text = open(sys.argv[1]).read(); ranks = int(sys.argv[2])
prev, samples, secs = 0, 0.0, 0.0
for step, sps in re.findall(r"rank 0/\d+ step (\d+)/\d+ .*? (\d+) samples/s", text):
    n = (int(step) - prev) * 64 * ranks; prev = int(step)
    samples += n; secs += n / float(sps)
print(samples / secs)
PY
}

RAW=$TMP/raw
for r in $(seq "$ROUNDS"); do
  for v in "${VARIANTS[@]}"; do
    # The reference BLAS is 10-20x slower: one round of it is enough.
    [ "$v" = blas ] && [ "$r" -gt 1 ] && continue
    x=$(run "$v" 2 1); echo "$v 2x1 $x" >>"$RAW"
    [ "$v" = blas ] && continue
    x=$(run "$v" 1 2); echo "$v 1x2 $x" >>"$RAW"
  done
done
python3 - "$RAW" <<'PY'
import json, sys, statistics as st
from collections import defaultdict
d = defaultdict(list)
for line in open(sys.argv[1]):
    v, shape, x = line.split(); d[(v, shape)].append(float(x))
sp = lambda v: {"min": round(min(v)), "median": round(st.median(v)), "max": round(max(v))}
chosen = "openblas-openmp"
for (v, shape), xs in sorted(d.items()):
    if v == chosen or (chosen, shape) not in d: continue
    base = d[(chosen, shape)]
    print(json.dumps({"bench": "blas", "metric": f"samples_per_sec_{chosen}_vs_{v}_{shape}", "unit": "x",
                      "n": len(base), "value": round(st.median(base) / st.median(xs), 3), "gantry": sp(base),
                      "baseline": sp(xs), "note": f"demo job loop, {shape} = ranks x threads; gantry = {chosen}, baseline = {v} as libblas.so.3"}))
PY
