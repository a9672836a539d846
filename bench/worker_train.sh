#!/usr/bin/env bash
# bench/run.sh worker_train: overlap and bucket figures on 2 ranks, and
# 2-rank vs 1-rank throughput (1 LibTorch thread each), alternating runs.
#   $1 = path of bench_worker_train; $2 = rounds of the 1-vs-2 comparison (3)
set -euo pipefail
BIN=${1:?usage: worker_train.sh BENCH_BINARY [rounds]}
ROUNDS=${2:-3}
MPI=(mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1)
one=() two=()
for r in $(seq "$ROUNDS"); do
  one+=("$("${MPI[@]}" -np 1 "$BIN" 10 3 | grep '"step_seconds_1rank"')")
  out=$("${MPI[@]}" -np 2 "$BIN" 10 3)
  [ "$r" -eq 1 ] && grep -v step_seconds <<<"$out"
  two+=("$(grep '"step_seconds_2rank"' <<<"$out")")
done
python3 - "${one[@]}" -- "${two[@]}" <<'PY'
import json, sys, statistics as st
args = sys.argv[1:]; cut = args.index("--")
one = [json.loads(a)["value"] for a in args[:cut]]
two = [json.loads(a)["value"] for a in args[cut + 1:]]
# Throughput: samples/s = ranks x batch / step time.
tp1 = [64 / t for t in one]; tp2 = [2 * 64 / t for t in two]
sp = lambda v: {"min": min(v), "median": st.median(v), "max": max(v)}
print(json.dumps({"bench": "worker_train", "metric": "throughput_2rank_vs_1rank", "unit": "x", "n": len(one),
                  "value": round(st.median(tp2) / st.median(tp1), 3), "gantry": sp(tp2), "baseline": sp(tp1),
                  "note": "samples/s; gantry = 2 ranks, baseline = 1 rank, 1 thread each"}))
PY
