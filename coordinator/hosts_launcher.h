// `hosts` launcher: mpirun with the attempt's hosts, OpenMPI's own launcher
// across machines (DESIGN.md, "Launchers"). The coordinator's scheduler
// chooses the hosts (cluster config hosts[], SlotMap); mpirun starts its
// daemon (orted) on each through the rsh agent (ssh by default) and the
// ranks under it.
//
// 1. Start() runs, under the same exit-recording wrapper as the local
//    launcher (mpi_launch.h), `mpirun -np N -H <host of rank 0>,<host of
//    rank 1>,… --mca rmaps seq` so that rank r runs on LaunchRequest.hosts[r]
//    (the sequential mapper follows the list; mpirun's default mapping puts
//    its own host first), plus `--mca plm_rsh_agent <log_dir>/rsh-agent`
//    (the configured agent, ssh by default, in a wrapper: step 3),
//    TCP keepalive settings for mpirun's daemons (below),
//    the cluster's launcher.mpirun_args, `-x GANTRY_KEYS=<keys_dir>` when
//    the services use CURVE, and the worker's command line (the local
//    launcher's, mpi_launch.h).
// 2. The workers are handed the storage, monitor and coordinator endpoints
//    the coordinator was given. A remote rank cannot reach a loopback or
//    wildcard address, so Start refuses those (CheckRemoteEndpoints) unless
//    every rank runs on this host.
// 3. How the attempt ended (ClassifyMpirunExit, from mpirun's exit status,
//    <log_dir>/launcher.log and the rsh sessions that failed): mpirun lost
//    the daemon of a host that had started ranks (host down, network cut,
//    orted killed) → failure class "node_lost" with that host in
//    ExitInfo::lost_hosts, so the scheduler keeps the job's next attempts
//    off it. mpirun reports such a loss either as "lost communication with
//    a remote daemon … on node X" (exit 205) or, when the end of the
//    daemon's rsh session reaches it first, as a daemon that "failed to
//    start": then the session record names the host. A daemon that never
//    started (rsh agent refused, orted not installed, no route back) →
//    "node_unreachable", with the host when it is known (also kept off).
//    Anything else is classified by the exit status.
//    mpirun runs the configured rsh agent through a small wrapper
//    (<log_dir>/rsh-agent) that records the sessions ending in error; the
//    agent gets the host as its first argument not starting with '-'.
//
// The data directory (the spec the ranks read, the folder their logs go
// to), the worker binary and the job's data must be at the same paths on
// every host (a shared filesystem, as for Slurm). Checkpoints need no shared
// filesystem: a rank that does not see storage's inbox streams the bytes to
// storage over its ZeroMQ endpoint (worker/checkpoint_plane.h).
//
// Thread safety: like every launcher, used from the coordinator's loop only.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "coordinator/launcher.h"

namespace gantry::coordinator {

struct HostsOptions {
  std::string mpirun = "mpirun";
  std::string worker_binary;  // absolute path of gantry-worker, the same on every host
  // OpenMPI's plm_rsh_agent (cluster config launcher.rsh_agent): how mpirun
  // reaches a host ("ssh -o BatchMode=yes", a script). Empty: OpenMPI's
  // default, ssh.
  std::string rsh_agent;
  std::vector<std::string> extra_args;  // launcher.mpirun_args (they win over the defaults below)
  // The ranks' GANTRY_KEYS (a client keys directory, common/curve.h) when
  // the services use CURVE; empty: none is set.
  std::string keys_dir;
  // TCP keepalive on the connections between mpirun and its daemons: a host
  // that stops answering (power, network) is declared lost after about
  // time + interval x probes seconds (9 s by default) instead of the
  // system's default of hours. Shorter notices a loss sooner; too short
  // declares a host lost during a brief network stall.
  int keepalive_time_seconds = 5;
  int keepalive_interval_seconds = 1;
  int keepalive_probes = 3;
};

// What an ended attempt left behind that tells how it ended.
struct MpirunRecord {
  std::string launcher_log;  // the end of <log_dir>/launcher.log (mpirun's own output)
  // Hosts whose rsh session (mpirun -> agent -> orted) ended in error,
  // from <log_dir>/rsh_sessions: the agent wrapper Start() installs writes
  // "<host> <exit status>" there. A session ends when its orted does.
  std::vector<std::string> failed_sessions;
  // Hosts where a rank of the attempt started (its rank-<r>.log exists;
  // placement.json maps ranks to hosts): their daemon had started.
  std::vector<std::string> hosts_ran;
};
MpirunRecord ReadMpirunRecord(const std::string& log_dir);

// Refines mpirun's exit with the attempt's record: see step 3 above. An
// exit that is ok, or already has a failure class, is returned as it is.
ExitInfo ClassifyMpirunExit(ExitInfo exit, const MpirunRecord& record);

// invalid_argument naming the endpoint when a remote rank could not reach
// it: a loopback or wildcard address (tcp://127.0.0.1:…, tcp://0.0.0.0:…,
// tcp://*:…), or ipc:// / inproc://. Ok when every host in `hosts` is this
// host by a loopback name, or the endpoint is empty (not used).
Status CheckRemoteEndpoints(const LaunchRequest& request);

class HostsMpiLauncher final : public Launcher {
 public:
  explicit HostsMpiLauncher(HostsOptions options) : options_(std::move(options)) {}
  Result<std::unique_ptr<Launch>> Start(const LaunchRequest& request) override;
  // Refused: deployments run on the coordinator's host through the local
  // launcher (coordinator/main.cc).
  Result<std::unique_ptr<Launch>> StartProcess(const ProcessRequest& request) override;
  Result<std::unique_ptr<Launch>> Adopt(const AdoptRequest& request) override;
  // The command line Start() runs; public so tests and docs can show it.
  std::vector<std::string> CommandLine(const LaunchRequest& request) const;

 private:
  // <log_dir>/rsh-agent: runs the configured agent, records failed sessions.
  Status WriteRshAgent(const std::string& log_dir) const;

  HostsOptions options_;
};

}  // namespace gantry::coordinator
