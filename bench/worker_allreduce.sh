#!/usr/bin/env bash
# bench/run.sh worker_allreduce: the allreduce benchmark on 2 ranks.
#   $1 = path of bench_worker_allreduce; $2 = largest size in MiB (256);
#   $3 = rounds inside one process (3); $4 = processes per side (3)
# Processes alternate between Gantry's allocator settings (what
# gantry-worker runs with) and GANTRY_MALLOC_TUNING=0 (stock glibc, what a
# plain MPI or LibTorch program gets); the ratios pool both.
set -euo pipefail
BIN=${1:?usage: worker_allreduce.sh BENCH_BINARY [max_mib rounds processes]}
MAX_MIB=${2:-256} ROUNDS=${3:-3} PROCS=${4:-3}
STORE=$(mktemp -u /tmp/gantry-gloo-store.XXXXXX)
RAW=$(mktemp /tmp/gantry-allreduce-raw.XXXXXX)
trap 'rm -f "$STORE" "$RAW"' EXIT
run() {
  rm -f "$STORE"
  mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -x GANTRY_MALLOC_TUNING="$1" \
    "$BIN" "$MAX_MIB" "$ROUNDS" "$STORE" >>"$RAW"
}
for _ in $(seq "$PROCS"); do run 1; run 0; done
python3 - "$RAW" <<'PY'
import json, sys, statistics as st
from collections import defaultdict
pool = defaultdict(list)  # (tuned, side, mib) -> GB/s samples
for line in open(sys.argv[1]):
    if line.startswith("{"):
        d = json.loads(line)
        pool[(d["tuned"], d["side"], d["mib"])] += d["gbps"]
sp = lambda v: {"min": round(min(v), 3), "median": round(st.median(v), 3), "max": round(max(v), 3)}
def emit(metric, g, b, note):
    print(json.dumps({"bench": "worker_allreduce", "metric": metric, "unit": "x", "n": len(g),
                      "value": round(st.median(g) / st.median(b), 3), "gantry": sp(g), "baseline": sp(b),
                      "note": note}))
sizes = sorted({k[2] for k in pool if k[1] == "gantry"})
for mib in sizes:
    g = pool[(True, "gantry", mib)]
    s = f"{mib}MiB"
    emit(f"busbw_ratio_vs_mpi_{s}", g, pool[(False, "mpi", mib)],
         "GB/s busbw; gantry = MpiCommunicator in gantry-worker's process settings, baseline = one flat MPI_Allreduce, stock allocator")
    emit(f"busbw_ratio_vs_mpi_same_allocator_{s}", g, pool[(True, "mpi", mib)],
         "GB/s busbw; baseline = one flat MPI_Allreduce with Gantry's allocator settings")
    if pool.get((False, "gloo", mib)):
        emit(f"busbw_ratio_vs_gloo_{s}", g, pool[(False, "gloo", mib)],
             "GB/s busbw; baseline = c10d ProcessGroupGloo allreduce, stock allocator")
    emit(f"busbw_fraction_of_memcpy_{s}", g, pool[(True, "memcpy", mib)],
         "GB/s; baseline = memcpy of the same bytes on one rank")
    emit(f"malloc_tuning_gain_{s}", g, pool[(False, "gantry", mib)],
         "GB/s busbw; MpiCommunicator with vs without Gantry's allocator settings")
chunks = sorted((k for k in pool if k[0] and k[1].startswith("chunk_")), key=lambda k: int(k[1][6:-3]))
base = [k for k in chunks if k[1] == "chunk_4096KiB"]
for k in chunks:
    if base:
        emit(f"chunk_sweep_{k[1][6:]}_vs_4096KiB_at_{k[2]}MiB", pool[k], pool[base[0]],
             "GB/s busbw; each chunk size vs 4 MiB chunks, Gantry's allocator settings")
PY
