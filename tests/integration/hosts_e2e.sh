#!/usr/bin/env bash
# The hosts launcher across two "hosts": two network namespaces of this
# machine joined by a veth pair (10.77.0.1 and 10.77.0.2), an rsh agent that
# maps a host to `ip netns exec` (../shared/recipes/mpi-two-hosts-netns.md).
# Storage, monitor and coordinator run in the first namespace (`gantry up
# --config`), bound to the config's 10.77.0.1 addresses with auth: curve; the cluster config declares host 10.77.0.2
# (1 slot) before 10.77.0.1 (2 slots), so a 2-rank job puts rank 0 on
# 10.77.0.2 and rank 1 on 10.77.0.1. Twice, once the job has a checkpoint,
# 10.77.0.2 is lost: first every process of its namespace is SIGKILLed (its
# orted and rank), then its network link goes down (mpirun's keepalive
# gives up on it). Each time: attempt 1 ends with failure class node_lost
# naming 10.77.0.2, attempt 2 runs both ranks on 10.77.0.1 (the lost host is
# excluded), resumes from the checkpoint (step > 0) and the job SUCCEEDS.
# Exits 77 (skipped) when not root or network namespaces are unavailable.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
STEPS=${GANTRY_HOSTS_STEPS:-3000}  # ~5 s on 2 ranks: the kill lands well before the end
EVERY=${GANTRY_HOSTS_EVERY:-200}

[ "$(id -u)" -eq 0 ] || { echo "SKIP: not root (network namespaces need CAP_SYS_ADMIN)"; exit 77; }
command -v ip >/dev/null 2>&1 || { echo "SKIP: ip (iproute2) not installed"; exit 77; }
NS1=gantry-h1-$$
NS2=gantry-h2-$$
if ! ip netns add "$NS1" 2>/dev/null; then
  echo "SKIP: cannot create a network namespace (ip netns add: not permitted here)"
  exit 77
fi
trap 'ip netns del "$NS1"' EXIT  # replaced by teardown below

source "$HERE/lib.sh" "${1:-}" hosts
UP=0
teardown() {
  [ "$UP" = 1 ] && timeout -k 5 30 ip netns exec "$NS1" "$BIN/gantry" --data-dir "$DATA" down >/dev/null 2>&1
  for ns in "$NS1" "$NS2"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$ns" 2>/dev/null  # the veth pair goes with it
  done
  rm -rf "$DATA"
}
trap teardown EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

# 1. Two hosts.
ip netns add "$NS2" || fail "ip netns add $NS2"
ip link add "vg1-$$" type veth peer name "vg2-$$" || fail "ip link add veth"
ip link set "vg1-$$" netns "$NS1" && ip link set "vg2-$$" netns "$NS2" || fail "moving the veth ends"
ip -n "$NS1" addr add 10.77.0.1/24 dev "vg1-$$" && ip -n "$NS2" addr add 10.77.0.2/24 dev "vg2-$$" ||
  fail "addressing the veth ends"
for ns in "$NS1" "$NS2"; do ip -n "$ns" link set lo up; done
ip -n "$NS1" link set "vg1-$$" up && ip -n "$NS2" link set "vg2-$$" up || fail "bringing the veth up"
in1() { ip netns exec "$NS1" "$@"; }
g() { in1 gantry "$@"; }

# OpenMPI's rsh agent: mpirun calls it as `agent [ssh options] HOST COMMAND…`.
cat >"$DATA/netns-rsh" <<SH
#!/bin/sh
while [ \$# -gt 0 ]; do case "\$1" in -*) shift ;; *) break ;; esac; done
host=\$1; shift
case "\$host" in
  10.77.0.1) ns=$NS1 ;;
  10.77.0.2) ns=$NS2 ;;
  *) echo "netns-rsh: unknown host \$host" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" /bin/sh -c "\$*"
SH
chmod +x "$DATA/netns-rsh"
ok "two hosts: namespaces $NS1 (10.77.0.1) and $NS2 (10.77.0.2) [${SECONDS}s]"

# 2. The services in the first namespace, on 10.77.0.1 (auth: curve), started
# by `gantry up --config` from the addresses in the config (fixed ports:
# the namespace's own, nothing else binds there).
cat >"$DATA/cluster.yaml" <<YAML
auth: curve
coordinator: {bind: "tcp://10.77.0.1:7600", stop_grace_seconds: 5}
storage: {bind: "tcp://10.77.0.1:7601"}
monitor: {ingest: "tcp://10.77.0.1:7602", feed: "tcp://10.77.0.1:7603", api: "tcp://10.77.0.1:7604",
          http: "127.0.0.1:8600"}
launcher:
  kind: hosts
  rsh_agent: $DATA/netns-rsh
  # One namespace's ranks must not take another's for the same machine
  # (shared memory); OpenMPI's daemons and ranks talk over the veth only.
  # OpenMPI's session folders in the data dir: a killed orted leaves its own.
  mpirun_args: [--mca, btl, "tcp,self", --mca, btl_tcp_if_include, 10.77.0.0/24,
                --mca, oob_tcp_if_include, 10.77.0.0/24, --mca, orte_tmpdir_base, $DATA/ompi]
hosts:
  - {name: 10.77.0.2, cpus: 1}
  - {name: 10.77.0.1, cpus: 2}
YAML
mkdir -p "$DATA/ompi"
endpoint() {  # endpoint SERVICE NAME: from the service's run file
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['endpoints'][sys.argv[2]])" \
    "$DATA/run/$1.json" "$2" 2>/dev/null
}
g up --detach --config "$DATA/cluster.yaml" >"$DATA/up.log" 2>&1 || { cat "$DATA/up.log" >&2; fail "gantry up --config"; }
UP=1
grep -q "launcher: hosts" "$DATA"/logs/coordinator*.log || fail "the coordinator did not pick the hosts launcher"
[ "$(endpoint coordinator api)" = tcp://10.77.0.1:7600 ] || fail "coordinator bound to $(endpoint coordinator api)"
[ "$(endpoint storage api)" = tcp://10.77.0.1:7601 ] || fail "storage bound to $(endpoint storage api)"
[ "$(endpoint monitor ingest)" = tcp://10.77.0.1:7602 ] || fail "monitor ingest bound to $(endpoint monitor ingest)"
g status >/dev/null 2>&1 || fail "gantry status over CURVE: $(g status 2>&1 | tail -3)"
ok "gantry up --config: storage, monitor, coordinator on the config's 10.77.0.1 addresses with CURVE; launcher hosts [${SECONDS}s]"

# A 2-rank job (one rank per host), checkpointed every EVERY steps.
cat >"$DATA/job.yaml" <<YAML
name: hosts-mnist
model: {builtin: mlp, hidden: [64]}
data: {path: $FMNIST, limit: 4096}
resources: {workers: 2}
train: {steps: $STEPS, batch_size: 64, log_every: 10, threads: 1, heartbeat_seconds: 1}
checkpoint: {every_steps: $EVERY}
restart: {max_restarts: 2, backoff_seconds: 1}
YAML
field() { g job show "$1" --json 2>/dev/null | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)" 2>/dev/null; }
is() { [ "$(field "$1" "$2")" = "$3" ]; }  # is JOB EXPR VALUE (for wait_for: evaluated on every poll)
hosts_of() {  # hosts_of JOB ATTEMPT: the hosts of its ranks, in rank order
  python3 -c "import json,sys; print(','.join(r['host'] for r in json.load(open(sys.argv[1]))['ranks']))" \
    "$DATA/jobs/$1/attempt-$2/placement.json"
}

# lose_host MODEL HOW: a 2-rank job (rank 0 on 10.77.0.2) loses 10.77.0.2
# once it has a checkpoint (HOW: kill = SIGKILL every process there; cut =
# delete its network link), then must end node_lost naming 10.77.0.2,
# restart on 10.77.0.1 alone (the lost host is excluded), resume from the
# checkpoint and succeed.
lose_host() {
  local model=$1 how=$2 J placed cls msg final resumed
  J=$(g submit "$DATA/job.yaml" --set checkpoint.model="$model" --quiet) || fail "submit"
  wait_for 30 is "$J" "j['job']['state']" RUNNING || fail "job $J did not start: $(field "$J" "j['job']['reason']")"
  placed=$(hosts_of "$J" 1)
  [ "$placed" = "10.77.0.2,10.77.0.1" ] || fail "attempt 1 of $J placed on $placed, want 10.77.0.2,10.77.0.1"
  ok "job $J attempt 1: rank 0 on 10.77.0.2, rank 1 on 10.77.0.1 [${SECONDS}s]"

  wait_for 60 test -d "$DATA/checkpoints/$model/v1" ||
    fail "no checkpoint of $J: $(field "$J" "j['job']['state'], j['job']['reason']")"
  [ -n "$(ip netns pids "$NS2")" ] || fail "nothing of $J runs in $NS2"
  if [ "$how" = kill ]; then
    ip netns pids "$NS2" | xargs -r kill -KILL
    ok "checkpoint v1 of $J saved; every process of $NS2 (10.77.0.2) SIGKILLed [${SECONDS}s]"
  else
    # Its end of the veth down: 10.77.0.1 keeps its address (the services
    # stay reachable in the first namespace), nothing reaches 10.77.0.2.
    ip -n "$NS2" link set "vg2-$$" down || fail "taking the link of $NS2 down"
    ok "checkpoint v1 of $J saved; 10.77.0.2 cut off the network (its processes still run) [${SECONDS}s]"
  fi

  # mpirun notices a cut link through TCP keepalive (~9 s).
  wait_for 40 is "$J" "len(j['attempts']) >= 2" True ||
    fail "no second attempt of $J: $(field "$J" "j['job']['state'], j['job']['reason']")"
  cls=$(field "$J" "j['attempts'][0]['failure_class']")
  msg=$(field "$J" "j['attempts'][0]['message']")
  [ "$cls" = node_lost ] || fail "attempt 1 of $J ended '$cls' ($msg), want node_lost"
  case "$msg" in *"lost host 10.77.0.2"*"host 10.77.0.2 excluded"*) ;; *) fail "attempt 1 message: $msg" ;; esac
  ok "attempt 1 of $J ended node_lost: $msg [${SECONDS}s]"
  placed=$(hosts_of "$J" 2)
  [ "$placed" = "10.77.0.1,10.77.0.1" ] || fail "attempt 2 of $J placed on $placed, want both ranks on 10.77.0.1"
  final=""
  for _ in $(seq 300); do
    final=$(field "$J" "j['job']['state']")
    case "$final" in SUCCEEDED|FAILED|CANCELLED) break ;; esac
    sleep 0.3
  done
  [ "$final" = SUCCEEDED ] || fail "job $J ended $final: $(field "$J" "j['job']['reason']")"
  resumed=$(sed -n 's/.*rank 0\/2: resuming from .* at step \([0-9]*\),.*/\1/p' "$DATA/jobs/$J/attempt-2/rank-0.log" |
    head -1)
  [ -n "$resumed" ] && [ "$resumed" -gt 0 ] || fail "attempt 2 of $J did not resume from a checkpoint (step '$resumed')"
  ok "attempt 2 of $J on 10.77.0.1 x2 resumed at step $resumed; job $J SUCCEEDED [${SECONDS}s]"
}

# 3. Its orted and rank killed: mpirun's rsh session to it ends.
lose_host hosts-kill kill
# 4. Its link down: nothing ends, mpirun's keepalive gives up on it. (The
# exclusion is per job: this job starts on 10.77.0.2 again.)
lose_host hosts-cut cut
echo "all $checks checks passed in $SECONDS s"
