// Child processes: spawn, signal, reap. A ChildProcess owns its pid: the
// destructor kills the child's process group and reaps it unless released.
// Children may be started in a new session (setsid) so that one signal to
// the group reaches everything they started (mpirun and its ranks).
//
// Thread safety: one owner thread per ChildProcess.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace gantry {

struct SpawnOptions {
  std::vector<std::string> argv;           // argv[0] is resolved on PATH
  std::map<std::string, std::string> env;  // added to (or overriding) ours
  std::string stdout_path;                 // append; empty = inherit
  bool merge_stderr = true;                // stderr to the same file
  bool new_session = true;                 // setsid(): own process group
  std::string cwd;
};

// How a process ended.
struct ExitInfo {
  ExitInfo() = default;
  ExitInfo(int code, int sig) : exit_code(code), signal(sig) {}
  int exit_code = -1;  // when exited normally
  int signal = 0;      // when killed by a signal
  // Set by a launcher that knows more than the exit status (Slurm's job
  // state): the attempt's failure class ("time_limit", "node_lost",
  // "cancelled", …) and what happened, in words. Empty: classify by
  // exit_code and signal.
  std::string failure_class;
  std::string detail;
  // "node_lost": the hosts (as the cluster config names them) whose loss
  // ended the attempt, when the launcher can tell; the scheduler keeps the
  // job's next attempts off them.
  std::vector<std::string> lost_hosts;
  bool ok() const { return signal == 0 && exit_code == 0 && failure_class.empty(); }
  std::string ToString() const;
};

class ChildProcess {
 public:
  ChildProcess() = default;
  static Result<ChildProcess> Spawn(const SpawnOptions& options);
  ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_), exit_(o.exit_) { o.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !exit_; }
  // Non-blocking reap; returns the exit once the child has ended.
  std::optional<ExitInfo> Poll();
  // Blocking reap.
  ExitInfo Wait();
  // Signals the child's process group (or just the child if it has none).
  void Signal(int sig);
  // SIGTERM, wait up to `grace`, then SIGKILL the group; reaps.
  ExitInfo Terminate(std::chrono::milliseconds grace);
  // Gives up ownership: the process keeps running, nobody reaps it here.
  pid_t Release();

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<ExitInfo> exit_;
};

ExitInfo DecodeWaitStatus(int status);
// True if a process with this pid exists (and is not a zombie we own).
bool ProcessAlive(pid_t pid);
// True while some process of group `pgid` is alive (zombies awaiting their
// reaper do not count: they hold no resources and cannot run).
bool GroupAlive(pid_t pgid);
// Path of the running executable's directory (to find sibling binaries).
std::string SelfDir();

}  // namespace gantry
