#include "coordinator/launcher.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <vector>

#include "common/fs.h"

namespace gantry::coordinator {
namespace {

// Every live descendant of `root`, from /proc (children before grandchildren).
std::vector<pid_t> Descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;  // ppid -> pid
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto stat = ReadFile(entry.path().string() + "/stat");
    if (!stat.ok()) continue;
    // "pid (comm) state ppid ...": comm may hold spaces, so parse after ')'.
    auto close = stat->rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat->c_str() + close + 1, " %c %d", &state, &ppid) != 2) continue;
    children.emplace(ppid, std::stoi(name));
  }
  std::vector<pid_t> out;
  std::vector<pid_t> frontier = {root};
  while (!frontier.empty()) {
    pid_t p = frontier.back();
    frontier.pop_back();
    auto [begin, end] = children.equal_range(p);
    for (auto it = begin; it != end; ++it) {
      out.push_back(it->second);
      frontier.push_back(it->second);
    }
  }
  return out;
}

class ProcessLaunch final : public Launch {
 public:
  explicit ProcessLaunch(ChildProcess child) : child_(std::move(child)) {}
  ~ProcessLaunch() override { Kill(); }

  std::optional<ExitInfo> Poll() override {
    auto e = child_.Poll();
    // mpirun is gone; make sure no orphaned rank of its group lingers.
    if (e) ::kill(-child_.pid(), SIGKILL);
    return e;
  }
  void RequestStop() override { child_.Signal(SIGTERM); }
  void RequestPreempt() override { child_.Signal(SIGUSR1); }
  ExitInfo Kill() override {
    if (child_.running()) {
      for (pid_t p : Descendants(child_.pid())) ::kill(p, SIGKILL);
    }
    return child_.Terminate(std::chrono::milliseconds(0));
  }
  int pid() const override { return child_.pid(); }

 private:
  ChildProcess child_;
};

}  // namespace

std::vector<std::string> LocalMpiLauncher::CommandLine(const LaunchRequest& r) const {
  std::vector<std::string> argv = {options_.mpirun, "-np", std::to_string(r.workers),
                                   "--oversubscribe", "--bind-to", "none"};
  if (::geteuid() == 0) argv.push_back("--allow-run-as-root");
  for (const auto& a : options_.extra_args) argv.push_back(a);
  for (const char* var : {"OMP_NUM_THREADS", "MKL_NUM_THREADS"}) {
    argv.push_back("-x");
    argv.push_back(var);
  }
  argv.insert(argv.end(), {options_.worker_binary, "--job-id", r.job_id, "--attempt",
                           std::to_string(r.attempt), "--spec", r.spec_path, "--storage",
                           r.storage_endpoint, "--monitor", r.monitor_endpoint, "--log-dir", r.log_dir});
  if (!r.coordinator_endpoint.empty()) {
    argv.push_back("--coordinator");
    argv.push_back(r.coordinator_endpoint);
  }
  return argv;
}

Result<std::unique_ptr<Launch>> LocalMpiLauncher::Start(const LaunchRequest& r) {
  GANTRY_RETURN_IF_ERROR(MakeDirs(r.log_dir));
  SpawnOptions o;
  o.argv = CommandLine(r);
  o.stdout_path = r.log_dir + "/launcher.log";
  o.new_session = true;
  std::string threads = std::to_string(r.threads_per_worker);
  o.env = {{"OMP_NUM_THREADS", threads}, {"MKL_NUM_THREADS", threads}};
  if (::geteuid() == 0) {
    o.env["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
    o.env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
  }
  GANTRY_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(o));
  return std::unique_ptr<Launch>(std::make_unique<ProcessLaunch>(std::move(child)));
}

}  // namespace gantry::coordinator
