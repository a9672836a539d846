# A real single-node Slurm (munged, slurmctld, slurmd) in a scratch folder,
# on free ports, for tests and benchmarks (../shared/recipes/slurm-single-node.md).
#   source tests/integration/slurm_lib.sh
#   slurm_missing && skip "…"   # prints why Slurm cannot run here, else fails
#   slurm_start DIR || fail …   # exports SLURM_CONF; waits until the node is idle
#   slurm_cancel_all            # cancels every job in it, kills what remains of them
#   slurm_stop                  # stops the three daemons by pid (never by name)
# Needs root (slurmd runs jobs as their submitting user) and the Debian
# packages slurm-wlm, slurm-wlm-basic-plugins and munge.
SLURM_PIDS=()

# Prints why Slurm cannot run here and succeeds; fails (prints nothing) when it can.
slurm_missing() {
  [ "$(id -u)" -eq 0 ] || { echo "not root (slurmd must run as root)"; return 0; }
  local b
  for b in munged mungekey slurmctld slurmd sbatch srun scontrol squeue scancel sinfo; do
    command -v "$b" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$b" >/dev/null 2>&1 ||
      { echo "$b not installed (apt-get install slurm-wlm slurm-wlm-basic-plugins munge)"; return 0; }
  done
  return 1
}

_slurm_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

slurm_start() {
  local d=$1
  export PATH="$PATH:/usr/sbin"
  mkdir -p "$d/munge" "$d/state" "$d/spool" || return 1
  chmod 700 "$d/munge"
  mungekey --create --keyfile="$d/munge/munge.key" >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$d/munge/munge.key" bs=1 count=1024 2>/dev/null || return 1
  chmod 400 "$d/munge/munge.key"
  munged --foreground --force --key-file="$d/munge/munge.key" --socket="$d/munge/munge.socket" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/munge/munged.log" --seed-file="$d/munge/munged.seed" \
    >/dev/null 2>&1 &
  SLURM_PIDS+=($!)
  local node ctld_port slurmd_port
  node=$(slurmd -C | sed -n 's/^\(NodeName=.*\)/\1/p')
  ctld_port=$(_slurm_free_port)
  slurmd_port=$(_slurm_free_port)
  cat >"$d/slurm.conf" <<CONF
ClusterName=gantrytest
SlurmctldHost=$(hostname -s)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.socket
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$d/jobcomp.txt
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerParameters=sched_interval=1
# SIGTERM -> SIGKILL after a cancel or time limit (default 30 s).
KillWait=2
$node State=UNKNOWN
PartitionName=gantry Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$d/slurm.conf"
  _SLURM_OURS=$SLURM_CONF
  # munged must answer before slurmctld authenticates anything.
  local i
  for i in $(seq 50); do [ -S "$d/munge/munge.socket" ] && break; sleep 0.1; done
  slurmctld -D -f "$SLURM_CONF" >"$d/slurmctld.out" 2>&1 &
  SLURM_PIDS+=($!)
  slurmd -D -f "$SLURM_CONF" >"$d/slurmd.out" 2>&1 &
  SLURM_PIDS+=($!)
  for i in $(seq 100); do
    [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && return 0
    sleep 0.1
  done
  echo "slurm did not become idle in 10 s: $(sinfo -h -o '%T %E' 2>&1)" >&2
  tail -n 5 "$d/slurmctld.log" "$d/slurmd.log" >&2 2>/dev/null
  return 1
}

# Cancels every job of this user in the scratch Slurm (only when SLURM_CONF
# is the one slurm_start wrote: never a site's) and waits up to 10 s for
# them to go; the processes of steps still left on the node (`scontrol
# listpids`, while slurmd runs) are killed by pid, so none outlives slurmd.
slurm_cancel_all() {
  [ -n "${SLURM_CONF:-}" ] && [ "${SLURM_CONF}" = "${_SLURM_OURS:-}" ] || return 0
  scancel --quiet --user="$(id -un)" 2>/dev/null
  local i
  for i in $(seq 100); do
    [ -z "$(squeue -h -o %i 2>/dev/null)" ] && [ -z "$(_slurm_step_pids)" ] && return 0
    sleep 0.1
  done
  local pid
  for pid in $(_slurm_step_pids); do kill -KILL "$pid" 2>/dev/null; done
}
_slurm_step_pids() { scontrol listpids 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ {print $1}'; }

# Stops the daemons this shell started, newest first, by pid.
slurm_stop() {
  local i pid
  for ((i = ${#SLURM_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${SLURM_PIDS[$i]}
    kill -TERM "$pid" 2>/dev/null
  done
  for ((i = ${#SLURM_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${SLURM_PIDS[$i]}
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  SLURM_PIDS=()
}
