#include "common/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

namespace gantry {

std::string ExitInfo::ToString() const {
  std::string how = signal ? std::string("killed by signal ") + std::to_string(signal) + " (" + strsignal(signal) + ")"
                           : "exit code " + std::to_string(exit_code);
  return detail.empty() ? how : detail + ", " + how;
}

ExitInfo DecodeWaitStatus(int status) {
  ExitInfo e;
  if (WIFEXITED(status)) e.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
  return e;
}

Result<ChildProcess> ChildProcess::Spawn(const SpawnOptions& o) {
  if (o.argv.empty()) return Status::InvalidArgument("spawn: empty argv");
  // Prepare everything that allocates before fork.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos && o.env.count(kv.substr(0, eq))) continue;
    env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : o.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = o.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out_fd = -1;
  if (!o.stdout_path.empty()) {
    out_fd = ::open(o.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0) return Status::Internal("open " + o.stdout_path + ": " + std::strerror(errno));
  }
  // A pipe reports exec failure to the parent (CLOEXEC closes it on success).
  int pfd[2];
  if (::pipe2(pfd, O_CLOEXEC) != 0) return Status::Internal(std::string("pipe: ") + std::strerror(errno));

  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pfd[0]);
    ::close(pfd[1]);
    if (out_fd >= 0) ::close(out_fd);
    return Status::ResourceExhausted(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    if (o.new_session) ::setsid();
    if (out_fd >= 0) {
      ::dup2(out_fd, STDOUT_FILENO);
      if (o.merge_stderr) ::dup2(out_fd, STDERR_FILENO);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    if (!o.cwd.empty() && ::chdir(o.cwd.c_str()) != 0) {
      int err = errno;
      (void)!::write(pfd[1], &err, sizeof err);
      ::_exit(127);
    }
    // Reset signal dispositions the parent may have changed.
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvpe(argv[0], argv.data(), envp.data());
    int err = errno;
    (void)!::write(pfd[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(pfd[1]);
  if (out_fd >= 0) ::close(out_fd);
  int err = 0;
  ssize_t n;
  do {
    n = ::read(pfd[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  ::close(pfd[0]);
  if (n == sizeof err) {
    int st;
    ::waitpid(pid, &st, 0);
    return Status::NotFound("cannot run " + o.argv[0] + ": " + std::strerror(err));
  }
  return ChildProcess(pid);
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    if (running()) Terminate(std::chrono::milliseconds(0));
    pid_ = o.pid_;
    exit_ = o.exit_;
    o.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (running()) Terminate(std::chrono::milliseconds(0));
}

std::optional<ExitInfo> ChildProcess::Poll() {
  if (exit_ || pid_ <= 0) return exit_;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) exit_ = DecodeWaitStatus(st);
  else if (r < 0 && errno == ECHILD) exit_ = ExitInfo{};
  return exit_;
}

ExitInfo ChildProcess::Wait() {
  if (exit_ || pid_ <= 0) return exit_.value_or(ExitInfo{});
  int st = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &st, 0);
  } while (r < 0 && errno == EINTR);
  exit_ = r == pid_ ? DecodeWaitStatus(st) : ExitInfo{};
  return *exit_;
}

void ChildProcess::Signal(int sig) {
  if (!running()) return;
  // The child leads its own group when spawned with new_session.
  if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
}

ExitInfo ChildProcess::Terminate(std::chrono::milliseconds grace) {
  if (!running()) return exit_.value_or(ExitInfo{});
  if (grace.count() > 0) {
    Signal(SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Poll()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  // Kill what is left of the group even if the leader already exited.
  ::kill(-pid_, SIGKILL);
  if (!exit_) {
    ::kill(pid_, SIGKILL);
    Wait();
  }
  // SIGKILL is delivered asynchronously: members in uninterruptible sleep
  // die a little later. Wait (bounded) so callers see a dead group.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (GroupAlive(pid_) && std::chrono::steady_clock::now() < deadline) {
    ::kill(-pid_, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return *exit_;
}

pid_t ChildProcess::Release() {
  pid_t p = pid_;
  pid_ = -1;
  return p;
}

namespace {
// Parses /proc/<pid>/stat: the state letter and the process group.
bool ReadStat(const std::string& path, char* state, long* pgrp) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return false;
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  // The command name may hold spaces and parentheses: fields follow the last ')'.
  const char* rp = std::strrchr(buf, ')');
  if (!rp) return false;
  long ppid = 0;
  return std::sscanf(rp + 1, " %c %ld %ld", state, &ppid, pgrp) == 3;
}
}  // namespace

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0) return errno == EPERM;
  // A zombie still answers kill(0); look at its state.
  char state = 0;
  long pgrp = 0;
  if (!ReadStat("/proc/" + std::to_string(pid) + "/stat", &state, &pgrp)) return true;
  return state != 'Z' && state != 'X';
}

bool GroupAlive(pid_t pgid) {
  if (pgid <= 0) return false;
  if (::kill(-pgid, 0) != 0 && errno != EPERM) return false;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    char state = 0;
    long pgrp = 0;
    if (!ReadStat(entry.path().string() + "/stat", &state, &pgrp)) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

std::string SelfDir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return ".";
  return p.parent_path().string();
}

}  // namespace gantry
