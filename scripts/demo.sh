#!/usr/bin/env bash
# The whole tour in one command: installs what is missing, builds, starts the
# embedded cluster, trains the Fashion-MNIST job while you watch, lists its
# checkpoints and stops the cluster.
set -euo pipefail
GANTRY_ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$GANTRY_ROOT/scripts/lib.sh"
cd "$GANTRY_ROOT"

install_packages
BUILD=${GANTRY_BUILD_DIR:-$GANTRY_ROOT/build}
mkdir -p "$BUILD"
build_gantry "$BUILD"
export PATH="$BUILD/bin:$PATH"

started=0
stop_cluster() {
  if [ "$started" -eq 1 ]; then
    log "stopping the cluster (gantry down)"
    gantry down || true
  fi
}
trap stop_cluster EXIT

if gantry status >/dev/null 2>&1; then
  log "reusing the Gantry cluster already running in ${GANTRY_DATA_DIR:-.gantry}"
else
  log "starting the cluster (gantry up --detach)"
  gantry up --detach
  started=1
fi

log "live dashboard: http://127.0.0.1:8600/ (Prometheus metrics at /metrics) while the cluster runs"

log "submitting configs/jobs/fashion_mnist.yaml"
job=$(gantry submit configs/jobs/fashion_mnist.yaml --quiet)
echo "job id: $job"

log "watching $job (Ctrl-C stops watching; the job keeps running until the cluster stops)"
set +e
gantry watch "$job"
rc=$?
set -e

log "job summary"
gantry job show "$job"
log "checkpoint versions of fashion-mnist"
gantry ckpt list fashion-mnist
log "alerts"
gantry alerts --job "$job" || true
[ "$rc" -eq 0 ] || die "the job did not succeed (exit $rc); see: gantry logs $job"
log "done. Explore: gantry jobs, gantry logs $job, gantry ckpt list fashion-mnist"
