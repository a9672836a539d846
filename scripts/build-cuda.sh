#!/usr/bin/env bash
# Builds Gantry with CUDA and NCCL in its own folder and runs the GPU tests;
# on a host with a GPU and a CUDA LibTorch, also trains a tiny CSV job on
# the GPU(s) with gantry-worker under mpirun. Installs nothing: it uses what
# the machine has, so it works on a GPU host where nothing can be installed.
# Not run by CI (CI has no GPU).
#
#   ./scripts/build-cuda.sh [ctest arguments...]    default: -R Nccl
#
# Environment (all optional):
#   GANTRY_BUILD_DIR   build folder (default: build-cuda/ in the repository)
#   CUDAToolkit_ROOT   CUDA toolkit prefix (default: nvcc on PATH, else /usr/local/cuda)
#   NCCL_ROOT          NCCL prefix when it is not in the toolkit, the nvidia-nccl
#                      wheel beside torch, or the system paths (NCCL_HOME works too)
#   PYTHON             python whose CUDA torch provides LibTorch (default: python3)
#   LIBTORCH           an unpacked LibTorch to use instead (its folder)
#   JOBS               parallel compile jobs (default: nproc)
#   GANTRY_CMAKE_ARGS  extra cmake arguments
#   GANTRY_CUDA_SMOKE  0 to skip the training run
set -euo pipefail
GANTRY_ROOT=$(cd "$(dirname "$0")/.." && pwd)
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

BUILD=${GANTRY_BUILD_DIR:-$GANTRY_ROOT/build-cuda}
JOBS=${JOBS:-$(nproc)}
PY=${PYTHON:-python3}
args=(-DCMAKE_BUILD_TYPE=Release -DGANTRY_WITH_CUDA=ON -DGANTRY_WITH_NCCL=ON -DGANTRY_BUILD_TESTS=ON)

# CUDA toolkit: CMake's FindCUDAToolkit looks for nvcc on PATH; point it at
# the usual place when nvcc is not there.
if [ -n "${CUDAToolkit_ROOT:-}" ]; then
  args+=("-DCUDAToolkit_ROOT=$CUDAToolkit_ROOT")
elif ! command -v nvcc >/dev/null 2>&1 && [ -d /usr/local/cuda ]; then
  args+=(-DCUDAToolkit_ROOT=/usr/local/cuda)
fi
[ -n "${NCCL_ROOT:-}" ] && args+=("-DNCCL_ROOT=$NCCL_ROOT")

# LibTorch: CUDA tensors need a CUDA build of it. Debian's libtorch-dev is
# CPU-only: with it everything compiles, and the tests that need CUDA
# tensors skip.
cuda_torch=0
if [ -n "${LIBTORCH:-}" ]; then
  [ -d "$LIBTORCH/share/cmake/Torch" ] || die "LIBTORCH=$LIBTORCH has no share/cmake/Torch"
  args+=("-DCMAKE_PREFIX_PATH=$LIBTORCH")
  [ -n "$(ls "$LIBTORCH"/lib/libtorch_cuda.so 2>/dev/null)" ] && cuda_torch=1
  log "LibTorch from LIBTORCH=$LIBTORCH (CUDA: $([ $cuda_torch = 1 ] && echo yes || echo no))"
elif command -v "$PY" >/dev/null 2>&1 &&
     info=$("$PY" -c 'import torch; print(torch.version.cuda or ""); print(torch.utils.cmake_prefix_path); print(int(torch._C._GLIBCXX_USE_CXX11_ABI)); print(torch.__version__)' 2>/dev/null) &&
     [ -n "$(sed -n 1p <<<"$info")" ]; then
  cuda_torch=1
  prefix=$(sed -n 2p <<<"$info")
  args+=("-DCMAKE_PREFIX_PATH=$prefix")
  log "LibTorch from $PY's torch $(sed -n 4p <<<"$info") (CUDA $(sed -n 1p <<<"$info")): $prefix"
  if [ "$(sed -n 3p <<<"$info")" != 1 ]; then
    # Gantry links the system's C++ libraries (yaml-cpp, spdlog, ...), built
    # with the new libstdc++ ABI; such a torch cannot be linked with them.
    warn "this torch uses the old C++ ABI (_GLIBCXX_USE_CXX11_ABI=0): linking will likely fail;" \
         "use torch >= 2.7 or a 'cxx11 ABI' LibTorch (LIBTORCH=...)"
  fi
else
  warn "no CUDA torch in $PY (set PYTHON or LIBTORCH): using the system LibTorch, probably CPU-only;" \
       "the tests that need CUDA tensors will skip and the training run is left out"
fi
# shellcheck disable=SC2206
[ -n "${GANTRY_CMAKE_ARGS:-}" ] && args+=($GANTRY_CMAKE_ARGS)

log "configuring $BUILD"
mkdir -p "$BUILD"
cmake -S "$GANTRY_ROOT" -B "$BUILD" "${args[@]}" >"$BUILD/configure.log" 2>&1 \
  || { cat "$BUILD/configure.log"; die "cmake configure failed (log: $BUILD/configure.log)"; }
grep -E 'gantry-worker: (CUDA|NCCL)' "$BUILD/configure.log" | sed 's/^-- /    /' >&2 || true
log "building with $JOBS jobs"
cmake --build "$BUILD" -j "$JOBS" >"$BUILD/build.log" 2>&1 \
  || { grep -E -A6 'error|Error' "$BUILD/build.log" | head -60 >&2; die "build failed (log: $BUILD/build.log)"; }

gpus=0
if command -v nvidia-smi >/dev/null 2>&1 && smi=$(nvidia-smi -L 2>/dev/null); then
  gpus=$(grep -c '^GPU ' <<<"$smi" || true)
  log "GPUs: $gpus"
  printf '    %s\n' "$smi" >&2
else
  warn "nvidia-smi finds no GPU: the GPU tests will skip"
fi

# OpenMPI refuses root unless told; the two-rank test starts mpirun.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMP_NUM_THREADS=1

log "running the NCCL tests"
[ $# -eq 0 ] && set -- -R Nccl
set +e
ctest --test-dir "$BUILD" --output-on-failure "$@" | tee "$BUILD/ctest.log"
status=${PIPESTATUS[0]}
set -e
skipped=$(grep -c '\*\*\*Skipped' "$BUILD/ctest.log" || true)
[ "$skipped" -gt 0 ] && warn "$skipped test(s) skipped; the reasons are above (ctest --output-on-failure -V shows each)"
[ "$status" -eq 0 ] || die "tests failed"

# A real training run on the GPU(s): a small CSV problem, one rank per GPU
# (at most 2), no storage or monitor.
if [ "${GANTRY_CUDA_SMOKE:-1}" != 0 ] && [ "$gpus" -gt 0 ] && [ "$cuda_torch" = 1 ]; then
  np=$((gpus < 2 ? gpus : 2))
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  awk 'BEGIN { srand(7); print "a,b,c,d,label";
               for (i = 0; i < 2048; i++) { k = i % 3; printf "%.3f,%.3f,%.3f,%.3f,%d\n",
                 k + rand() * 0.5, rand(), 2 - k + rand() * 0.5, rand(), k } }' >"$dir/train.csv"
  cat >"$dir/spec.yaml" <<EOF
name: cuda-smoke
model: {builtin: mlp, hidden: [32]}
data: {format: csv, path: $dir, train_file: train.csv, test_file: train.csv}
resources: {workers: $np, device: cuda}
train: {steps: 60, batch_size: 32, log_every: 20, threads: 1, optimizer: {name: adam, lr: 0.01}}
EOF
  log "training a tiny CSV job on $np GPU rank(s)"
  if mpirun -np "$np" --oversubscribe --bind-to none --timeout 300 "$BUILD/bin/gantry-worker" \
       --job-id cuda-smoke --attempt 1 --spec "$dir/spec.yaml" --storage "" --monitor "" >"$dir/run.log" 2>&1; then
    { grep -E 'NCCL communicator|done:' "$dir/run.log" || true; } | sed 's/^/    /' >&2
    log "GPU training run OK"
  else
    cat "$dir/run.log" >&2
    die "the GPU training run failed"
  fi
fi
log "done: $BUILD"
