#include "coordinator/mpi_launch.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <vector>

#include "common/fs.h"
#include "common/process.h"

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

// Runs "$@" (mpirun ...) and records its exit status in the file $0. The
// traps keep the wrapper alive through the SIGTERM/SIGUSR1 sent to the group
// for mpirun; a trap (unlike SIG_IGN) is reset in mpirun by exec.
constexpr const char* kWrapper =
    "trap : TERM USR1 INT HUP; \"$@\"; rc=$?; "
    "echo $rc > \"$0.tmp\" && mv -f \"$0.tmp\" \"$0\"; exit $rc";

ExitInfo FromShellCode(int rc) {
  ExitInfo e;
  if (rc > 128 && rc < 128 + 65) {
    e.signal = rc - 128;
  } else {
    e.exit_code = rc;
  }
  return e;
}

class ProcessLaunch final : public Launch {
 public:
  ProcessLaunch(ChildProcess child, std::string log_dir) : child_(std::move(child)), log_dir_(std::move(log_dir)) {}
  ~ProcessLaunch() override {
    if (!abandoned_) Kill();
  }

  std::optional<ExitInfo> Poll() override {
    auto e = child_.Poll();
    if (!e) return std::nullopt;
    // mpirun is gone; make sure no orphaned rank of its group lingers.
    ::kill(-child_.pid(), SIGKILL);
    if (auto recorded = ReadExitStatus(log_dir_)) return recorded;
    return e;
  }
  void RequestStop() override { child_.Signal(SIGTERM); }
  void RequestPreempt() override { child_.Signal(SIGUSR1); }
  ExitInfo Kill() override {
    if (child_.running()) {
      for (pid_t p : Descendants(child_.pid())) ::kill(p, SIGKILL);
    }
    ExitInfo e = child_.Terminate(std::chrono::milliseconds(0));
    if (auto recorded = ReadExitStatus(log_dir_)) return *recorded;
    return e;
  }
  int pid() const override { return child_.pid(); }
  void Abandon() override {
    abandoned_ = true;
    child_.Release();
  }

 private:
  ChildProcess child_;
  std::string log_dir_;
  bool abandoned_ = false;
};

// An attempt started by an earlier coordinator: not our child, so it is
// watched through its process group and ends with its exit file.
class AdoptedLaunch final : public Launch {
 public:
  AdoptedLaunch(int pid, int pgid, std::string log_dir) : pid_(pid), pgid_(pgid), log_dir_(std::move(log_dir)) {}
  ~AdoptedLaunch() override {
    if (!abandoned_ && !ended_) Kill();
  }

  std::optional<ExitInfo> Poll() override {
    if (auto e = ReadExitStatus(log_dir_)) return End(*e);
    if (GroupAlive(pgid_)) return std::nullopt;
    // Gone without a record (the wrapper itself was killed): one more look,
    // in case the file landed between the two checks.
    if (auto e = ReadExitStatus(log_dir_)) return End(*e);
    return End(ExitInfo{-1, SIGKILL});
  }
  void RequestStop() override { ::kill(-pgid_, SIGTERM); }
  void RequestPreempt() override { ::kill(-pgid_, SIGUSR1); }
  ExitInfo Kill() override {
    for (pid_t p : Descendants(pid_)) ::kill(p, SIGKILL);
    ::kill(-pgid_, SIGKILL);
    if (auto e = ReadExitStatus(log_dir_)) return End(*e);
    return End(ExitInfo{-1, SIGKILL});
  }
  int pid() const override { return pid_; }
  int pgid() const override { return pgid_; }
  void Abandon() override { abandoned_ = true; }

 private:
  ExitInfo End(const ExitInfo& e) {
    if (!ended_) ::kill(-pgid_, SIGKILL);  // no orphaned rank lingers
    ended_ = true;
    return e;
  }
  int pid_, pgid_;
  std::string log_dir_;
  bool abandoned_ = false;
  bool ended_ = false;
};

}  // namespace

std::optional<ExitInfo> ReadExitStatus(const std::string& log_dir) {
  auto text = ReadFile(log_dir + "/" + kExitStatusFile);
  if (!text.ok()) return std::nullopt;
  int rc = 0;
  if (std::sscanf(text->c_str(), "%d", &rc) != 1) return std::nullopt;
  return FromShellCode(rc);
}

Result<std::unique_ptr<Launch>> SpawnWrapped(const std::vector<std::string>& argv, const std::string& log_dir,
                                             const std::string& log_name, std::map<std::string, std::string> env) {
  if (argv.empty()) return Status::InvalidArgument("launch: empty command line");
  GANTRY_RETURN_IF_ERROR(MakeDirs(log_dir));
  std::error_code ec;
  std::filesystem::remove(log_dir + "/" + kExitStatusFile, ec);  // left by an earlier try of this attempt
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", kWrapper, log_dir + "/" + kExitStatusFile};
  for (const auto& a : argv) o.argv.push_back(a);
  o.stdout_path = log_dir + "/" + log_name;
  o.new_session = true;
  o.env = std::move(env);
  GANTRY_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(o));
  return std::unique_ptr<Launch>(std::make_unique<ProcessLaunch>(std::move(child), log_dir));
}

Result<std::unique_ptr<Launch>> AdoptWrapped(const AdoptRequest& r) {
  int pgid = r.pgid > 0 ? r.pgid : r.pid;
  // The group must still run this attempt under the wrapper that records its
  // exit (a reused pid runs something else; an older launch has no wrapper).
  auto cmd = ReadFile("/proc/" + std::to_string(pgid) + "/cmdline");
  std::string exit_file = r.log_dir + "/" + kExitStatusFile;
  if (pgid <= 0 || !GroupAlive(pgid) || !cmd.ok() || cmd->find(r.job_id) == std::string::npos ||
      cmd->find(exit_file) == std::string::npos) {
    return Status::NotFound("attempt " + std::to_string(r.attempt) + " of job " + r.job_id + " is not running");
  }
  return std::unique_ptr<Launch>(std::make_unique<AdoptedLaunch>(r.pid, pgid, r.log_dir));
}

std::string RankGlibcTunables() { return WithGlibcTunable(std::getenv("GLIBC_TUNABLES"), kRankHugePages); }

std::map<std::string, std::string> MpirunEnv(int threads_per_worker) {
  std::string threads = std::to_string(threads_per_worker);
  std::map<std::string, std::string> env = {
      {"OMP_NUM_THREADS", threads}, {"MKL_NUM_THREADS", threads}, {"GLIBC_TUNABLES", RankGlibcTunables()}};
  if (::geteuid() == 0) {
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
  }
  return env;
}

void AppendWorkerCommand(std::vector<std::string>& argv, const std::string& worker_binary, const LaunchRequest& r) {
  for (const char* var : {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "GLIBC_TUNABLES"}) {
    argv.push_back("-x");
    argv.push_back(var);
  }
  if (!r.gpus.empty()) {
    // One value per rank, picked by a wrapper around each rank (mpirun's -x
    // sets one value for all ranks).
    std::string lists;
    for (size_t i = 0; i < r.gpus.size(); ++i) lists += (i ? ";" : "") + r.gpus[i];
    argv.insert(argv.end(), {"-x", "GANTRY_RANK_GPUS=" + lists, "/bin/sh", "-c", kRankDevicesScript, "gantry-rank"});
  }
  argv.insert(argv.end(), {worker_binary, "--job-id", r.job_id, "--attempt", std::to_string(r.attempt), "--spec",
                           r.spec_path, "--storage", r.storage_endpoint, "--monitor", r.monitor_endpoint,
                           "--log-dir", r.log_dir});
  if (!r.coordinator_endpoint.empty()) {
    argv.push_back("--coordinator");
    argv.push_back(r.coordinator_endpoint);
  }
}

}  // namespace gantry::coordinator
