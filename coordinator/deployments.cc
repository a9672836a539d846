#include "coordinator/deployments.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include "common/fs.h"
#include "common/glibc_tunables.h"
#include "common/protocol.h"

namespace gantry::coordinator {
namespace {

constexpr const char* kReadyFile = "ready.json";
constexpr const char* kLogFile = "serve.log";

// What gantry-serve's ready file says: {"name","port","pid","models":[{"name","version"}]}.
struct ReadyInfo {
  int port = 0;
  int pid = 0;
  std::string versions;  // "mnist:3,cnn:7"
};

// (inode, mtime in ns) of `path`; (0, 0) when it cannot be read.
std::pair<uint64_t, int64_t> FileStamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {0, 0};
  return {static_cast<uint64_t>(st.st_ino), int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
}

std::optional<ReadyInfo> ReadReadyFile(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return std::nullopt;
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto port = j.find("port");
  if (port == j.end() || !port->is_number_integer()) return std::nullopt;
  ReadyInfo r;
  r.port = port->get<int>();
  if (auto pid = j.find("pid"); pid != j.end() && pid->is_number_integer()) r.pid = pid->get<int>();
  if (auto models = j.find("models"); models != j.end() && models->is_array()) {
    for (const auto& m : *models) {
      if (!m.is_object()) continue;
      std::string version;
      if (auto v = m.find("version"); v != m.end()) version = v->is_string() ? v->get<std::string>() : v->dump();
      if (!r.versions.empty()) r.versions += ",";
      r.versions += m.value("name", "?") + ":" + version;
    }
  }
  if (r.port <= 0 || r.port > 65535) return std::nullopt;
  return r;
}

// invalid_argument when nothing can bind host:port now.
Status PortFree(const std::string& host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal("socket: " + std::string(strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as the server does
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    return Status::InvalidArgument("deploy: port " + std::to_string(port) + " on " + host +
                                   " cannot be bound (" + strerror(err) + "); pick another --port or 0");
  }
  return Status::Ok();
}

std::string Ms(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + " s" : std::to_string(d.count()) + " ms";
}

}  // namespace

Deployments::Deployments(DeploymentsOptions options, DeploymentStore store, Launcher& launcher, const Clock& clock)
    : options_(std::move(options)), store_(std::move(store)), launcher_(launcher), clock_(clock) {}

Deployments::~Deployments() = default;  // a Launch kills its process unless abandoned

std::string Deployments::Dir(const std::string& name) const {
  return options_.data_dir + "/deployments/" + name;
}

std::vector<std::string> Deployments::CommandLine(const Deployment& d) const {
  const DeploymentSpec& s = d.spec;
  std::vector<std::string> argv = {options_.serve_binary,
                                   "--storage", options_.storage_endpoint,
                                   "--model", s.ModelRef(),
                                   "--port", std::to_string(d.port),
                                   "--host", options_.host,
                                   "--max-batch", std::to_string(s.max_batch),
                                   "--max-delay-ms", std::to_string(s.max_delay_ms)};
  if (s.int8) argv.push_back("--int8");
  if (!options_.monitor_endpoint.empty()) {
    char rate[32];
    std::snprintf(rate, sizeof(rate), "%g", s.sample_rate);
    argv.insert(argv.end(), {"--monitor-ingest", options_.monitor_endpoint, "--sample-rate", rate});
  }
  argv.insert(argv.end(), {"--data-dir", options_.data_dir, "--name", s.name, "--ready-file",
                           d.dir + "/" + kReadyFile});
  return argv;
}

void Deployments::Save(Live& l) {
  l.d.updated_at = clock_.WallSeconds();
  if (Status s = store_.Update(l.d); !s.ok()) {
    spdlog::error("deployment {}: persisting {}: {}; written again with its next change", l.d.spec.name,
                  DeploymentStateName(l.d.state), s.ToString());
  }
}

Status Deployments::CheckPort(const DeploymentSpec& spec) const {
  if (spec.port == 0) return Status::Ok();
  for (const auto& [name, l] : live_) {
    if (l.d.port == spec.port || l.d.spec.port == spec.port) {
      return Status::AlreadyExists("deploy: port " + std::to_string(spec.port) + " is deployment " + name +
                                   "'s; pick another --port or 0");
    }
  }
  return PortFree(options_.host, spec.port);
}

Result<Deployment> Deployments::Deploy(DeploymentSpec spec) {
  GANTRY_RETURN_IF_ERROR(spec.Validate());
  if (options_.storage_endpoint.empty()) {
    return Status::FailedPrecondition(
        "deploy: this coordinator was started without --storage, so gantry-serve cannot load models");
  }
  if (options_.serve_binary.find('/') != std::string::npos && ::access(options_.serve_binary.c_str(), X_OK) != 0) {
    return Status::FailedPrecondition("deploy: no gantry-serve executable at " + options_.serve_binary +
                                      "; build it (target gantry-serve) or start the coordinator with --serve-bin");
  }
  if (live_.count(spec.name)) {
    return Status::AlreadyExists("deploy: name '" + spec.name + "' is taken by a deployment; pick another " +
                                 "--name or `gantry undeploy " + spec.name + "` first");
  }
  GANTRY_RETURN_IF_ERROR(CheckPort(spec));
  Live l;
  l.d.spec = std::move(spec);
  l.d.port = l.d.spec.port;
  l.d.state = DeploymentState::kStarting;
  l.d.reason = "launching gantry-serve";
  l.d.created_at = l.d.updated_at = clock_.WallSeconds();
  l.d.dir = Dir(l.d.spec.name);
  GANTRY_RETURN_IF_ERROR(MakeDirs(l.d.dir));
  // Recorded before anything runs, so a crash after the launch finds it.
  GANTRY_RETURN_IF_ERROR(store_.Insert(l.d).WithContext("recording deployment " + l.d.spec.name));
  std::string name = l.d.spec.name;
  Live& stored = live_.emplace(name, std::move(l)).first->second;
  spdlog::info("deployment {} ({}) created", name, stored.d.spec.ModelRef());
  Start(stored);
  return stored.d;
}

void Deployments::Start(Live& l) {
  Deployment& d = l.d;
  std::error_code ec;
  std::filesystem::remove(d.dir + "/" + kReadyFile, ec);  // a ready file is always this run's
  ProcessRequest req;
  req.key = d.spec.name;
  req.argv = CommandLine(d);
  // glibc reads its tunables at start; a value in our environment wins.
  req.env["GLIBC_TUNABLES"] = WithGlibcTunable(std::getenv("GLIBC_TUNABLES"), kServeMallocCache);
  req.log_dir = d.dir;
  req.log_name = kLogFile;
  auto now = clock_.Now();
  d.started_at = clock_.WallSeconds();
  d.ready_at = 0;
  d.serve_pid = 0;
  l.started = now;
  auto launch = launcher_.StartProcess(req);
  if (!launch.ok()) {
    spdlog::error("deployment {}: cannot launch gantry-serve: {}", d.spec.name, launch.status().ToString());
    (void)Ended(l, ExitInfo{}, "launch failed: " + launch.status().message());
    return;
  }
  l.launch = std::move(launch).value();
  d.pid = l.launch->pid();
  d.pgid = l.launch->pgid();
  d.state = DeploymentState::kStarting;
  d.reason = "starting gantry-serve (loading " + d.spec.ModelRef() + ")";
  Save(l);
  spdlog::info("deployment {}: gantry-serve started (group {}, port {})", d.spec.name, d.pgid, d.port);
}

bool Deployments::Ended(Live& l, const ExitInfo& exit, const std::string& why) {
  Deployment& d = l.d;
  l.launch.reset();
  d.pid = d.pgid = d.serve_pid = 0;
  d.ready_at = 0;
  d.last_exit = why.empty() ? exit.ToString() : why;
  if (d.state == DeploymentState::kStopping) {
    if (Status s = store_.Remove(d.spec.name); !s.ok()) {
      spdlog::error("deployment {}: removing its record: {}; retried next tick", d.spec.name, s.ToString());
      return false;
    }
    spdlog::info("deployment {} undeployed ({})", d.spec.name, d.last_exit);
    return true;
  }
  l.after_exit = true;
  const DeploymentPolicy& p = options_.policy;
  auto now = clock_.Now();
  if (now - l.started >= p.stable_after) l.failures = 0;
  l.failures++;
  l.recent.push_back(now);
  while (!l.recent.empty() && now - l.recent.front() > p.window) l.recent.pop_front();
  std::string log = d.dir + "/" + kLogFile;
  if (static_cast<int>(l.recent.size()) > p.max_restarts) {
    d.state = DeploymentState::kCrashLoop;
    d.reason = "crash loop: " + std::to_string(l.recent.size()) + " exits within " + Ms(p.window) + ", last " +
               d.last_exit + "; see " + log + ", then `gantry undeploy " + d.spec.name + "` and deploy again";
    spdlog::error("deployment {}: {}", d.spec.name, d.reason);
  } else {
    auto backoff = p.initial_backoff;
    for (int i = 1; i < l.failures && backoff < p.max_backoff; ++i) backoff *= 2;
    backoff = std::min(backoff, p.max_backoff);
    l.next_start = now + backoff;
    d.state = DeploymentState::kRestarting;
    d.reason = "gantry-serve ended (" + d.last_exit + "); restarting in " + Ms(backoff) + " (log: " + log + ")";
    spdlog::warn("deployment {}: {}", d.spec.name, d.reason);
  }
  Save(l);
  return false;
}

std::string Deployments::ServingReason(const Deployment& d) const {
  return "serving " + d.spec.ModelRef() + (d.version.empty() ? "" : " (" + d.version + ")") + " at http://" +
         options_.host + ":" + std::to_string(d.port);
}

void Deployments::CheckReady(Live& l) {
  const std::string path = l.d.dir + "/" + kReadyFile;
  const auto stamp = FileStamp(path);
  auto ready = ReadReadyFile(path);
  if (!ready) return;
  Deployment& d = l.d;
  l.ready_stamp = stamp;
  d.port = ready->port;  // kept for restarts: the address stays
  d.serve_pid = ready->pid;
  d.version = ready->versions;
  d.ready_at = clock_.WallSeconds();
  d.state = DeploymentState::kServing;
  d.reason = ServingReason(d);
  Save(l);
  spdlog::info("deployment {}: {}", d.spec.name, d.reason);
}

void Deployments::RefreshVersion(Live& l) {
  const std::string path = l.d.dir + "/" + kReadyFile;
  const auto stamp = FileStamp(path);
  if (stamp.first == 0 || stamp == l.ready_stamp) return;  // one stat per tick while nothing changes
  auto ready = ReadReadyFile(path);
  if (!ready || ready->pid != l.d.serve_pid) return;
  l.ready_stamp = stamp;
  if (ready->versions == l.d.version) return;
  spdlog::info("deployment {}: now serving {} (was {})", l.d.spec.name, ready->versions, l.d.version);
  l.d.version = ready->versions;
  l.d.reason = ServingReason(l.d);
  Save(l);
}

void Deployments::Tick() {
  auto now = clock_.Now();
  const DeploymentPolicy& p = options_.policy;
  std::vector<std::string> gone;
  for (auto& [name, l] : live_) {
    if (l.launch) {
      if (auto exit = l.launch->Poll()) {
        if (Ended(l, *exit, "")) gone.push_back(name);
      } else if (l.d.state == DeploymentState::kStopping) {
        if (now - l.stop_sent >= p.stop_grace) {
          spdlog::warn("deployment {}: gantry-serve ignored SIGTERM for {}, killing", name, Ms(p.stop_grace));
          if (Ended(l, l.launch->Kill(), "")) gone.push_back(name);
        }
      } else if (l.d.state == DeploymentState::kServing) {
        RefreshVersion(l);
      } else if (l.d.state == DeploymentState::kStarting) {
        CheckReady(l);
        if (l.d.state == DeploymentState::kStarting && now - l.started >= p.ready_timeout) {
          ExitInfo e = l.launch->Kill();
          (void)Ended(l, e, "not ready within " + Ms(p.ready_timeout) + ", killed");
        }
      }
    } else if (l.d.state == DeploymentState::kStopping) {
      if (Ended(l, ExitInfo{}, "stopped")) gone.push_back(name);  // removal retried
    } else if (l.d.state == DeploymentState::kRestarting && now >= l.next_start) {
      if (l.after_exit) l.d.restarts++;
      l.after_exit = false;
      Start(l);
    }
  }
  for (const auto& name : gone) live_.erase(name);
}

std::vector<Deployment> Deployments::List() const {
  std::vector<Deployment> out;
  for (const auto& [name, l] : live_) out.push_back(l.d);
  return out;
}

Result<Deployment> Deployments::Get(const std::string& name) const {
  auto it = live_.find(name);
  if (it == live_.end()) return Status::NotFound("no deployment " + name + " (list them with `gantry deployments`)");
  return it->second.d;
}

Result<Deployment> Deployments::Undeploy(const std::string& name) {
  auto it = live_.find(name);
  if (it == live_.end()) return Status::NotFound("no deployment " + name + " (list them with `gantry deployments`)");
  Live& l = it->second;
  if (l.d.state == DeploymentState::kStopping) return l.d;
  DeploymentState before = l.d.state;
  l.d.state = DeploymentState::kStopping;
  if (!l.launch) {
    if (Status s = store_.Remove(name); !s.ok()) {
      l.d.state = before;
      return s.WithContext("removing deployment " + name);
    }
    Deployment out = l.d;
    out.reason = "undeployed";
    live_.erase(it);
    spdlog::info("deployment {} undeployed (nothing was running)", name);
    return out;
  }
  l.d.reason = "undeploying: stopping gantry-serve";
  l.d.updated_at = clock_.WallSeconds();
  if (Status s = store_.Update(l.d); !s.ok()) {
    l.d.state = before;
    return s.WithContext("recording the undeploy of " + name);
  }
  l.stop_sent = clock_.Now();
  l.launch->RequestStop();
  return l.d;
}

Status Deployments::Recover() {
  GANTRY_ASSIGN_OR_RETURN(auto stored, store_.List());
  auto now = clock_.Now();
  for (Deployment& d : stored) {
    Live l;
    l.d = std::move(d);
    l.started = now;
    const std::string name = l.d.spec.name;
    if (l.d.pid > 0) {
      auto adopted = ReadExitStatus(l.d.dir)
                         ? Result<std::unique_ptr<Launch>>(Status::NotFound("ended"))
                         : launcher_.Adopt(AdoptRequest{name, 0, l.d.pid, l.d.pgid, l.d.dir});
      if (adopted.ok()) {
        l.launch = std::move(adopted).value();
        spdlog::info("deployment {}: re-adopted gantry-serve (group {})", name, l.d.pgid);
        if (l.d.state == DeploymentState::kStopping) {
          l.stop_sent = now;
          l.launch->RequestStop();
        } else if (l.d.state != DeploymentState::kServing) {
          l.d.state = DeploymentState::kStarting;
        }
        live_.emplace(name, std::move(l));
        continue;
      }
      if (auto e = ReadExitStatus(l.d.dir)) l.d.last_exit = e->ToString() + " while the coordinator was down";
      l.d.pid = l.d.pgid = l.d.serve_pid = 0;
      l.d.ready_at = 0;
    }
    if (l.d.state == DeploymentState::kStopping) {
      if (Status s = store_.Remove(name); !s.ok()) return s.WithContext("finishing the undeploy of " + name);
      spdlog::info("deployment {} undeployed (its process ended while the coordinator was down)", name);
      continue;
    }
    if (l.d.state != DeploymentState::kCrashLoop) {
      l.d.state = DeploymentState::kRestarting;
      l.d.reason = "starting again with the coordinator";
      l.next_start = now;  // the next Tick starts it
    }
    Save(l);
    live_.emplace(name, std::move(l));
  }
  spdlog::info("recovered {} deployments", live_.size());
  return Status::Ok();
}

void Deployments::Shutdown() {
  for (auto& [name, l] : live_) {
    if (l.launch) l.launch->RequestStop();
  }
  auto deadline = std::chrono::steady_clock::now() + options_.policy.stop_grace;
  // Wall-clock wait (not the injected clock): real processes are exiting.
  for (auto& [name, l] : live_) {
    if (!l.launch) continue;
    std::optional<ExitInfo> e;
    while (!(e = l.launch->Poll()) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!e) e = l.launch->Kill();
    l.launch.reset();
    Deployment& d = l.d;
    if (d.state == DeploymentState::kStopping) {
      (void)store_.Remove(name);  // a failure leaves it STOPPING: Recover removes it
      continue;
    }
    d.pid = d.pgid = d.serve_pid = 0;
    d.ready_at = 0;
    d.last_exit = e->ToString() + " (stopped with the cluster)";
    d.state = DeploymentState::kRestarting;
    d.reason = "stopped with the cluster; starts again with the coordinator";
    Save(l);
  }
  live_.clear();
}

void Deployments::Abandon() {
  for (auto& [name, l] : live_) {
    if (l.launch) l.launch->Abandon();
  }
  live_.clear();
}

}  // namespace gantry::coordinator
