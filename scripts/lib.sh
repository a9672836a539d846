# Shared by demo.sh and test.sh: install what is missing, then build.
# Debian 12 packages only; see docs/dependencies.md for why each is here.

GANTRY_PACKAGES=(
  build-essential cmake pkg-config ccache
  libtorch-dev libopenblas0-openmp
  libopenmpi-dev openmpi-bin
  libzmq3-dev cppzmq-dev
  libsqlite3-dev
  libboost-dev
  libgtest-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev
  zlib1g-dev
  libhowardhinnant-date-dev tzdata
  dataset-fashion-mnist
  python3-torch
  python3-scipy
  prometheus libjs-dygraphs chromium curl wrk
  slurm-wlm slurm-wlm-basic-plugins munge
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run '$*': run as root or install sudo"
  fi
}

install_packages() {
  local missing=()
  for p in "${GANTRY_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "all ${#GANTRY_PACKAGES[@]} Debian packages present"
  else
    log "installing ${#missing[@]} missing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  fi
  select_blas
}

# Makes OpenBLAS (OpenMP build) the libblas.so.3 that LibTorch calls.
# Debian's LibTorch calls whatever the libblas.so.3-x86_64-linux-gnu
# alternative points at; the reference Netlib BLAS it may fall back to trains
# the demo job 10x slower (docs/dependencies.md says why OpenMP). This
# changes the system-wide default for every program that links libblas.so.3;
# an administrator's manual choice of a BLAS other than OpenBLAS and the
# reference (MKL, BLIS) is kept.
# Set GANTRY_KEEP_BLAS=1 to leave the alternatives alone. Idempotent.
GANTRY_BLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
select_blas() {
  [ "${GANTRY_KEEP_BLAS:-0}" = 1 ] && return
  local name current mode
  # All three: libblas.so.3 loads libopenblas.so.0 through the system path,
  # so leaving that one on another build mixes two OpenBLAS builds.
  for name in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
    local alt=$name-x86_64-linux-gnu
    current=$(update-alternatives --query "$alt" 2>/dev/null | sed -n 's/^Value: //p')
    mode=$(update-alternatives --query "$alt" 2>/dev/null | sed -n 's/^Status: //p')
    [ "$current" = "$GANTRY_BLAS_DIR/$name" ] && continue
    if [ "$mode" = manual ] && [ -n "$current" ] && [[ "$current" != */blas/* && "$current" != */lapack/* && "$current" != */openblas-* ]]; then
      log "keeping $alt -> $current (chosen by hand; Gantry's default is $GANTRY_BLAS_DIR)"
      continue
    fi
    log "selecting OpenBLAS (OpenMP) as $name (was ${current:-none})"
    as_root update-alternatives --set "$alt" "$GANTRY_BLAS_DIR/$name"
  done
}

# build DIR [extra cmake args...]
build_gantry() {
  local dir=$1
  shift
  log "configuring ($dir)"
  mkdir -p "$dir"
  cmake -S "$GANTRY_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >"$dir/configure.log" 2>&1 \
    || { cat "$dir/configure.log"; die "cmake configure failed"; }
  log "building with $(nproc) jobs (the first build takes several minutes: LibTorch headers are large)"
  local status_file="$dir/.build-status"
  { cmake --build "$dir" -j "$(nproc)" 2>&1; echo $? >"$status_file"; } | tee "$dir/build.log" \
    | { grep --line-buffered -E '^\[ *[0-9]+%\] (Built target|Linking)' || true; } | sed -u 's/^/    /'
  if [ "$(cat "$status_file")" != 0 ]; then
    grep -E -A6 'error|Error' "$dir/build.log" | head -60 >&2
    die "build failed; full log in $dir/build.log"
  fi
}
