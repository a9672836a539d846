// Launchers start one attempt of a job on its gang of slots and watch it,
// and (StartProcess) the single long-running process of a deployment.
// One interface, chosen by cluster configuration (DESIGN.md: local, hosts,
// slurm); tests use a fake. A launcher never blocks the coordinator loop.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/process.h"
#include "common/status.h"

namespace gantry::coordinator {

// Everything needed to start the ranks of one attempt.
struct LaunchRequest {
  std::string job_id;
  int attempt = 0;
  int workers = 1;
  int threads_per_worker = 1;
  std::string spec_path;  // resolved spec JSON the workers read
  std::string log_dir;    // rank-<r>.log and launcher.log go here
  std::string storage_endpoint;
  std::string monitor_endpoint;
  std::string coordinator_endpoint;  // heartbeats; empty = the worker sends none
  // Where the scheduler placed the ranks (index = rank). `gpus[r]` is rank
  // r's CUDA_VISIBLE_DEVICES value ("0", "2,3"); empty vector for a cpu
  // job. `hosts[r]` is the cluster config host (hosts[].name) rank r was
  // placed on. The local launcher runs every rank here and hands each its
  // devices; other launchers may bind the same devices their own way.
  std::vector<std::string> gpus;
  std::vector<std::string> hosts;
};

// A running attempt. Owned by the coordinator; destroying it kills the ranks.
class Launch {
 public:
  virtual ~Launch() = default;
  // The attempt's exit once all its ranks have ended; nullopt while running.
  virtual std::optional<ExitInfo> Poll() = 0;
  // Asks the attempt to end now (cancel): ranks may not checkpoint.
  virtual void RequestStop() = 0;
  // Asks every rank to agree on a step, checkpoint and exit with
  // kExitPreempted (common/exit_codes.h), so the job resumes where it stopped.
  virtual void RequestPreempt() = 0;
  // Kills every rank now (SIGKILL) and reaps them.
  virtual ExitInfo Kill() = 0;
  // Process id that identifies the attempt on this host (for the record).
  virtual int pid() const = 0;
  // Its process group (recorded so a restarted coordinator can re-adopt it).
  virtual int pgid() const { return pid(); }
  // Leaves the processes running when this Launch is destroyed (what a
  // coordinator that crashes does implicitly; tests simulate that with it).
  virtual void Abandon() {}
};

// One long-running process (a deployment's gantry-serve), not a gang of
// ranks: started under the same exit-recording wrapper, in its own process
// group, so Poll/RequestStop/Kill and a restarted coordinator's Adopt()
// treat it like an attempt. `key` must appear in `argv` (Adopt checks it).
struct ProcessRequest {
  std::string key;
  std::vector<std::string> argv;         // argv[0] resolved on PATH
  std::map<std::string, std::string> env;  // added to the coordinator's
  std::string log_dir;                   // output.log and exit_status go here
  std::string log_name = "output.log";
};

// What a restarted coordinator knows of an attempt it did not start.
struct AdoptRequest {
  std::string job_id;
  int attempt = 0;
  int pid = 0;
  int pgid = 0;
  std::string log_dir;
};

// The attempt's own record of how it ended: <log_dir>/exit_status, written
// (atomically) by the attempt's wrapper when mpirun ends, so that a
// coordinator that is not its parent learns the exit. Codes above 128 are
// read as "killed by signal code-128" (the shell's convention).
inline constexpr const char* kExitStatusFile = "exit_status";
std::optional<ExitInfo> ReadExitStatus(const std::string& log_dir);

class Launcher {
 public:
  virtual ~Launcher() = default;
  virtual Result<std::unique_ptr<Launch>> Start(const LaunchRequest& request) = 0;
  // Starts one service process on this launcher's machine (ProcessRequest).
  virtual Result<std::unique_ptr<Launch>> StartProcess(const ProcessRequest& request) = 0;
  // Re-attaches to a live attempt started by an earlier coordinator (its
  // process group still runs). not_found when nothing of it is alive.
  virtual Result<std::unique_ptr<Launch>> Adopt(const AdoptRequest& request) = 0;
};

struct LocalMpiOptions {
  std::string mpirun = "mpirun";
  std::string worker_binary;  // absolute path of gantry-worker
  // Extra mpirun arguments (MCA settings) from the cluster config.
  std::vector<std::string> extra_args;
};

// `local`: mpirun on this machine, in its own process group. Signals go to
// mpirun, which forwards them: SIGUSR1 reaches every rank at once (the
// worker's preemption signal); SIGTERM makes mpirun kill the ranks after a
// second. OpenMPI puts ranks in process groups of their own, so Kill()
// SIGKILLs mpirun's descendants one by one (and ranks also die with their
// parent through PR_SET_PDEATHSIG). Rank output goes to
// <log_dir>/rank-<r>.log (the worker redirects itself) and mpirun's own to
// <log_dir>/launcher.log.
//
// mpirun runs under a small sh wrapper (the process group leader) that
// writes mpirun's exit status to <log_dir>/exit_status when it ends; the
// wrapper ignores the signals meant for mpirun (trap, not SIG_IGN, so
// mpirun and the ranks keep default dispositions). A coordinator that
// restarts re-adopts a live group with Adopt(): its Launch polls the group
// and reads the exit file.
//
// A cuda job's ranks get their devices through CUDA_VISIBLE_DEVICES: mpirun
// exports GANTRY_RANK_GPUS (the request's per-rank lists joined by ';') and
// runs each rank as `sh -c kRankDevicesScript gantry-rank <worker ...>`,
// which picks field OMPI_COMM_WORLD_RANK+1 and execs the worker.
extern const char* const kRankDevicesScript;

class LocalMpiLauncher final : public Launcher {
 public:
  explicit LocalMpiLauncher(LocalMpiOptions options) : options_(std::move(options)) {}
  Result<std::unique_ptr<Launch>> Start(const LaunchRequest& request) override;
  Result<std::unique_ptr<Launch>> StartProcess(const ProcessRequest& request) override;
  Result<std::unique_ptr<Launch>> Adopt(const AdoptRequest& request) override;
  // The command line Start() runs; public so tests and docs can show it.
  std::vector<std::string> CommandLine(const LaunchRequest& request) const;

 private:
  LocalMpiOptions options_;
};

}  // namespace gantry::coordinator
