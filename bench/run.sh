#!/usr/bin/env bash
# Runs the benchmarks (all, or those named) and prints their JSON lines.
#   bench/run.sh                 every bench_* binary in build/bench
#   bench/run.sh storage_save    only bench_storage_save
#   bench/run.sh ddp schedule    Gantry vs PyTorch DDP; scheduling speed
# Set GANTRY_BUILD_DIR for another build folder. Build Release first
# (./scripts/test.sh or cmake --build build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${GANTRY_BUILD_DIR:-$ROOT/build}/bench
[ -d "$BENCH_DIR" ] || { echo "no $BENCH_DIR: build first" >&2; exit 1; }
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMP_NUM_THREADS=1
echo "# $(uname -srm), $(nproc --all) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(date -u +%FT%TZ)" >&2
# Benchmarks that are a script only (no bench_NAME binary): they run the
# built gantry binaries from GANTRY_BUILD_DIR.
SCRIPT_ONLY=(ddp blas cli)
export GANTRY_BUILD_DIR=${GANTRY_BUILD_DIR:-$ROOT/build}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for b in "$BENCH_DIR"/bench_*; do [ -x "$b" ] && names+=("$(basename "$b" | sed 's/^bench_//')"); done
  names+=("${SCRIPT_ONLY[@]}")
fi
for n in "${names[@]}"; do
  b="$BENCH_DIR/bench_$n"
  if [[ " ${SCRIPT_ONLY[*]} " == *" $n "* ]]; then
    echo "# $n" >&2
    "$ROOT/bench/$n.sh"
    continue
  fi
  [ -x "$b" ] || { echo "no benchmark $n ($b)" >&2; exit 1; }
  echo "# bench_$n" >&2
  if [ -x "$ROOT/bench/$n.sh" ]; then "$ROOT/bench/$n.sh" "$b"; else "$b"; fi
done
