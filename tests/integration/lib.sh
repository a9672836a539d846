# Shared by the integration scripts: a fresh data dir, fail/ok reporting
# with the cluster's logs, cleanup that stops the cluster, and wait_for.
#   source "$(dirname "$0")/lib.sh" BIN_DIR NAME
# sets PATH, DATA (exported as GANTRY_DATA_DIR), FMNIST and checks.
BIN=${1:?usage: $0 BIN_DIR}
export PATH="$BIN:$PATH"
DATA=$(mktemp -d "/tmp/gantry-${2:-it}.XXXXXX")
export GANTRY_DATA_DIR="$DATA"
FMNIST=/usr/share/datasets/fashion-mnist
checks=0

fail() {
  echo "FAIL: $*" >&2
  for f in "$DATA"/logs/*.log "$DATA"/logs/supervisor.out "$DATA"/jobs/*/attempt-*/*.log; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
cleanup() {
  gantry down --timeout 20 >/dev/null 2>&1
  pkill -KILL -f "$DATA" 2>/dev/null
  rm -rf "$DATA"
}
trap cleanup EXIT
# wait_for SECONDS CMD...: polls CMD until it succeeds or the deadline passes.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}
