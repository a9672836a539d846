// The supervisor process: starts the services of the embedded cluster that
// are not running, restarts those that die (cli/supervisor.h), and publishes
// its state in run/supervisor.json for `gantry status`.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>

#include "cli/cluster.h"
#include "cli/supervisor.h"
#include "common/cluster_config.h"
#include "common/curve.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/signal_fd.h"

namespace gantry::cli {

std::string SupervisorFile(const DataDir& dir) { return dir.Path("run/supervisor.json"); }

std::optional<json> ReadSupervisorState(const DataDir& dir) {
  auto text = ReadFile(SupervisorFile(dir));
  if (!text.ok()) return std::nullopt;
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("pid")) return std::nullopt;
  j["alive"] = ProcessAlive(j["pid"].get<pid_t>());
  return j;
}

std::string Tail(const std::string& path, size_t max_lines) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) {
    lines.push_back(l);
    if (lines.size() > max_lines) lines.erase(lines.begin());
  }
  std::string out;
  for (auto& l : lines) out += "    " + l + "\n";
  return out;
}

namespace {

std::string Addr(const UpOptions& o, int offset) {
  int port = o.port_base == 0 ? 0 : o.port_base + offset;
  return "tcp://" + o.host + ":" + std::to_string(port);
}

// Starts services as children of this process. A restarted service binds
// the endpoints it had before (also with --port-base 0), so the coordinator
// and clients find it where they knew it.
class RealStarter final : public ProcessStarter {
 public:
  RealStarter(Context& ctx, const UpOptions& o) : ctx_(ctx), o_(o), dir_(ctx.dir()), bin_(SelfDir()) {}

  // "curve": every service starts with --auth curve (keys in <data>/keys).
  void SetAuth(std::string auth) { auth_ = std::move(auth); }

  void Adopt(const ServiceInfo& info) {
    adopted_[info.name] = info.pid;
    infos_[info.name] = info;
  }

  Result<pid_t> Start(const std::string& name) override {
    auto ep = [&](const std::string& svc, const std::string& which, int offset) {
      auto it = infos_.find(svc);
      if (it != infos_.end() && it->second.endpoints.count(which)) return it->second.endpoints.at(which);
      return Addr(o_, offset);
    };
    std::vector<std::string> args;
    // With a cluster config a service's first start takes its addresses
    // from the config (its --config); a restart keeps the ones it bound.
    const bool from_config = !o_.config.empty() && !o_.ports_given && infos_.count(name) == 0;
    if (from_config && name != kCoordinator) {
      args = {"--config", o_.config};
    } else if (name == kStorage) {
      args = {"--bind", ep(kStorage, "api", 1)};
    } else if (name == kMonitor) {
      // HTTP at base + 1000 (8600 for the default 7600); a restart keeps
      // the bound port, as for the ZeroMQ endpoints.
      std::string http = o_.host + ":" +
                         std::to_string(o_.port_base == 0 ? 0 : o_.port_base + (kMonitorHttpPort - kCoordinatorPort));
      if (auto it = infos_.find(kMonitor); it != infos_.end() && it->second.endpoints.count("http")) {
        http = it->second.endpoints.at("http");
        if (http.rfind("http://", 0) == 0) http = http.substr(7);
      }
      args = {"--ingest", ep(kMonitor, "ingest", 2), "--feed", ep(kMonitor, "feed", 3),
              "--api", ep(kMonitor, "api", 4), "--http", http};
    } else {
      if (!infos_.count(kStorage) || !infos_.count(kMonitor)) {
        return Status::FailedPrecondition("the coordinator needs storage and monitor running first");
      }
      args = {"--storage", infos_[kStorage].endpoints.at("api"), "--monitor", infos_[kMonitor].endpoints.at("ingest"),
              "--stop-grace", std::to_string(o_.stop_grace)};
      if (!from_config) args.insert(args.end(), {"--bind", ep(kCoordinator, "api", 0)});
      // With a cluster config its hosts give the slots, unless --slots was given.
      if (o_.config.empty() || o_.slots_given) args.insert(args.end(), {"--slots", std::to_string(o_.slots)});
      if (!o_.config.empty()) args.insert(args.end(), {"--config", o_.config});
    }
    if (!dir_.ReadServiceInfo(name).ok()) dir_.RemoveServiceInfo(name);  // a dead one's stale record
    SpawnOptions so;
    so.argv = {bin_ + "/gantry-" + name, "--data-dir", dir_.root()};
    so.argv.insert(so.argv.end(), args.begin(), args.end());
    if (auth_ == "curve") so.argv.insert(so.argv.end(), {"--auth", "curve"});
    so.stdout_path = dir_.Path("logs/" + name + ".out");
    so.new_session = true;  // its own group: outlives a detached supervisor, one signal reaches all of it
    GANTRY_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(so));
    adopted_.erase(name);
    auto info = WaitReady(name, child);
    if (!info.ok()) {
      child.Terminate(std::chrono::seconds(5));
      return info.status();
    }
    infos_[name] = *info;
    pid_t pid = child.pid();
    children_[name] = std::move(child);
    return pid;
  }

  std::optional<ExitInfo> Poll(const std::string& name) override {
    if (auto it = children_.find(name); it != children_.end()) return it->second.Poll();
    if (auto it = adopted_.find(name); it != adopted_.end()) {
      if (ProcessAlive(it->second)) return std::nullopt;
      adopted_.erase(it);
      return ExitInfo{};  // not our child: how it ended is unknown (exit_code -1)
    }
    return std::nullopt;
  }

  // Stops every service in reverse start order (foreground Ctrl-C).
  void StopAll(const std::vector<std::string>& order, std::chrono::milliseconds grace) {
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      if (auto c = children_.find(*it); c != children_.end() && c->second.running()) {
        ExitInfo e = c->second.Terminate(grace);
        std::cerr << "stopped " << *it << " (" << e.ToString() << ")\n";
      } else if (auto a = adopted_.find(*it); a != adopted_.end()) {
        ::kill(a->second, SIGTERM);
        auto deadline = std::chrono::steady_clock::now() + grace;
        while (ProcessAlive(a->second) && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (ProcessAlive(a->second)) ::kill(a->second, SIGKILL);
        std::cerr << "stopped " << *it << "\n";
      }
    }
  }

  // Leaves the services running when supervision ends.
  void ReleaseAll() {
    for (auto& [name, c] : children_) c.Release();
  }

 private:
  Result<ServiceInfo> WaitReady(const std::string& name, ChildProcess& child) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(o_.start_timeout * 1000));
    std::string out = dir_.Path("logs/" + name + ".out");
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto e = child.Poll()) {
        return Status::Unavailable("gantry-" + name + " exited during start-up (" + e->ToString() +
                                   "); its output:\n" + Tail(out) + "  full log: " + dir_.LogFile(name));
      }
      auto info = dir_.ReadServiceInfo(name);
      if (info.ok() && info->pid == child.pid()) {
        RpcClient c(ctx_.zmq(), info->endpoints.at("api"), std::chrono::milliseconds(1000));
        if (c.Call("ping").ok()) return info;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Status::DeadlineExceeded("gantry-" + name + " did not become ready within " +
                                    std::to_string(int(o_.start_timeout)) + " s; see " + dir_.LogFile(name));
  }

  Context& ctx_;
  UpOptions o_;
  DataDir dir_;
  std::string bin_;
  std::map<std::string, ChildProcess> children_;
  std::map<std::string, pid_t> adopted_;
  std::map<std::string, ServiceInfo> infos_;
  std::string auth_ = "none";
};

json StateJson(const Supervisor& sup, const Clock& clock, bool foreground) {
  json services = json::object();
  for (const ServiceRecord& r : sup.services()) {
    json s = {{"state", ServiceStateName(r.state)}, {"pid", r.pid}, {"restarts", r.restarts}};
    if (r.last_exit) {
      bool unknown = r.last_exit->exit_code == -1 && r.last_exit->signal == 0;
      s["last_exit"] = unknown ? "unknown (not started by this supervisor)" : r.last_exit->ToString();
      s["last_exit_time"] = r.last_exit_wall;
    }
    if (!r.last_error.empty()) s["last_error"] = r.last_error;
    if (r.state == ServiceState::kBackoff) {
      s["next_restart_in_s"] = std::chrono::duration<double>(r.next_start - clock.Now()).count();
    }
    services[r.name] = s;
  }
  return {{"pid", ::getpid()}, {"foreground", foreground}, {"updated", clock.WallSeconds()}, {"services", services}};
}

}  // namespace

int Supervise(Context& ctx, const UpOptions& o, bool foreground) {
  // Before any socket exists, so every thread inherits the blocked signals.
  auto signals = SignalFd::Create();
  if (!signals.ok()) return Fail(signals.status());
  DataDir dir = ctx.dir();
  if (Status s = dir.Ensure(); !s.ok()) return Fail(s);
  SystemClock clock;
  RealStarter starter(ctx, o);
  if (!o.config.empty()) {
    auto config = ClusterConfig::Load(o.config);
    if (!config.ok()) return Fail(config.status());
    if (config->auth == "curve") {
      // The keys, once: the services and this supervisor's pings use them.
      const std::string keys = dir.Path(kKeysDirName);
      if (Status s = EnsureClusterKeys(keys); !s.ok()) return Fail(s);
      auto client = LoadClientCurve(keys);
      if (!client.ok()) return Fail(client.status());
      SetProcessCurve(*client);
      starter.SetAuth("curve");
      std::cout << "auth: curve (ZeroMQ CURVE; keys in " << keys << ", clients authorised by " << keys << "/"
                << kAuthorizedKeysFile << ")" << std::endl;
    }
  }
  const std::vector<std::string> order = {kStorage, kMonitor, kCoordinator};
  Supervisor sup(clock, starter, SupervisorPolicy{}, order);
  std::vector<std::string> already;
  for (const auto& svc : order) {
    if (auto info = dir.ReadServiceInfo(svc); info.ok()) {
      starter.Adopt(*info);
      sup.Adopt(svc, info->pid);
      already.push_back(svc);
    }
  }
  auto publish = [&] {
    if (Status s = WriteFileAtomic(SupervisorFile(dir), StateJson(sup, clock, foreground).dump(2) + "\n"); !s.ok()) {
      std::cerr << "gantry supervise: " << s.ToString() << "\n";
    }
  };
  publish();
  auto grace = std::chrono::milliseconds(int64_t(o.stop_grace * 1000) + 5000);
  if (Status s = sup.StartPending(); !s.ok()) {
    starter.StopAll(order, grace);
    std::error_code ec;
    std::filesystem::remove(SupervisorFile(dir), ec);
    return Fail(s);
  }
  publish();
  std::cout << "supervising Gantry in " << dir.root() << " (pid " << ::getpid() << ")";
  for (auto& a : already) std::cout << "; " << a << " was already running";
  std::cout << std::endl;
  if (foreground) {
    std::cout << "Gantry is up (data dir " << dir.root() << ", "
              << (o.config.empty() || o.slots_given ? std::to_string(o.slots) + " slots" : "slots from " + o.config)
              << ")\n";
    for (const auto& svc : order) {
      auto info = dir.ReadServiceInfo(svc);
      if (!info.ok()) continue;
      std::cout << "  " << svc << std::string(13 - svc.size(), ' ') << "pid " << info->pid;
      for (auto& [k, v] : info->endpoints) std::cout << "  " << k << " " << v;
      std::cout << "\n";
    }
    std::cout << "Submit a job: gantry submit configs/jobs/fashion_mnist.yaml\n"
              << "Press Ctrl-C to stop (or run `gantry down`)." << std::endl;
  }
  int rc = 0;
  while (true) {
    pollfd p{signals->fd(), POLLIN, 0};
    ::poll(&p, 1, 200);
    if (p.revents & POLLIN) {
      int sig = signals->Read();
      if (sig == SIGHUP) {
        std::cout << "SIGHUP: starting whatever is not running" << std::endl;
        sup.Reset();
        publish();  // before the (blocking) restarts, so `gantry up` sees the crash loop is over
      } else if (sig != 0) {
        if (foreground) {
          std::cerr << "stopping Gantry...\n";
          starter.StopAll(order, grace);
        } else {
          std::cout << "supervision ends (signal " << sig << "); services keep running" << std::endl;
          starter.ReleaseAll();
        }
        break;
      }
    }
    std::vector<std::pair<ServiceState, pid_t>> before;
    for (auto& r : sup.services()) before.emplace_back(r.state, r.pid);
    if (sup.Tick()) {
      for (size_t i = 0; i < sup.services().size(); ++i) {
        const ServiceRecord& r = sup.services()[i];
        if (r.state == before[i].first && r.pid == before[i].second) continue;
        std::cout << r.name << ": " << ServiceStateName(r.state);
        if (r.last_exit) std::cout << " (last exit: " << r.last_exit->ToString() << ")";
        if (r.state == ServiceState::kRunning) std::cout << " pid " << r.pid << ", restarts " << r.restarts;
        if (!r.last_error.empty()) std::cout << "; " << r.last_error;
        std::cout << std::endl;
      }
      publish();
    }
    if (sup.AllStopped()) {  // everything was stopped on purpose (exit 0)
      std::cout << "every service stopped; supervision ends" << std::endl;
      break;
    }
  }
  std::error_code ec;
  std::filesystem::remove(SupervisorFile(dir), ec);
  return rc;
}

}  // namespace gantry::cli
