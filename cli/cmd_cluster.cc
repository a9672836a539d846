// gantry up / down / status: the embedded cluster on one machine.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include "cli/cluster.h"
#include "cli/commands.h"
#include "common/cluster_config.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/signal_fd.h"

namespace gantry::cli {
namespace {

bool AllRunning(const json& state) {
  for (const char* svc : {kStorage, kMonitor, kCoordinator}) {
    if (!state["services"].contains(svc) || state["services"][svc].value("state", "") != "running") return false;
  }
  return true;
}

void PrintServices(const DataDir& dir, const std::set<std::string>& already) {
  for (const char* svc : {kStorage, kMonitor, kCoordinator}) {
    auto info = dir.ReadServiceInfo(svc);
    if (!info.ok()) continue;
    std::cout << "  " << svc << std::string(13 - std::strlen(svc), ' ') << "pid " << info->pid;
    for (auto& [k, v] : info->endpoints) std::cout << "  " << k << " " << v;
    if (already.count(svc)) std::cout << "  (already running)";
    std::cout << "\n";
  }
}

double WallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Waits until the supervisor `pid` reports all three services running. A
// crash loop fails the wait only in a state published after `since` (wall
// seconds): an older one is what SIGHUP just reset.
int WaitUp(const DataDir& dir, pid_t pid, const std::set<std::string>& already, const UpOptions& o,
           double since) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(o.start_timeout * 3000) + 10000);
  while (true) {
    auto state = ReadSupervisorState(dir);
    if (state && state->value("pid", 0) == pid && AllRunning(*state)) break;
    if (!ProcessAlive(pid)) {
      return Fail(Status::Unavailable("the Gantry supervisor (pid " + std::to_string(pid) +
                                      ") exited during start-up; its output:\n" +
                                      Tail(dir.Path("logs/supervisor.out")) +
                                      "  full log: " + dir.Path("logs/supervisor.out")));
    }
    if (state && state->value("pid", 0) == pid && state->value("updated", 0.0) >= since) {
      for (auto& [name, s] : (*state)["services"].items()) {
        if (s.value("state", "") == "crash-loop") {
          return Fail(Status::Unavailable(name + " keeps crashing (" + s.value("last_exit", std::string("?")) +
                                          "): " + s.value("last_error", std::string("")) + "; see " +
                                          dir.LogFile(name)));
        }
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Fail(Status::DeadlineExceeded("Gantry did not come up; see " + dir.Path("logs/supervisor.out") +
                                           " and `gantry status`"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cout << "Gantry is up (data dir " << dir.root() << ", supervisor pid " << pid << ")\n";
  PrintServices(dir, already);
  std::cout << "Submit a job: gantry submit configs/jobs/fashion_mnist.yaml\n"
            << "Stop it with: gantry down" << std::endl;
  return 0;
}

// Idempotent: starts what is not running and leaves the rest alone. With a
// live supervisor it is asked (SIGHUP) to start what is missing; otherwise
// one is started (in this process, or with --detach as `gantry supervise`
// in its own session).
int Up(Context& ctx, const UpOptions& o) {
  DataDir dir = ctx.dir();
  if (Status s = dir.Ensure(); !s.ok()) return Fail(s);
  std::string bin = SelfDir();
  for (const char* b : {"gantry-storage", "gantry-monitor", "gantry-coordinator", "gantry-worker"}) {
    if (!PathExists(bin + "/" + b)) {
      return Fail(Status::NotFound(std::string("cannot find ") + b + " next to gantry in " + bin +
                                   " (build everything with ./scripts/demo.sh or cmake --build)"));
    }
  }
  if (!o.config.empty()) {
    // Checked here so that a bad config fails `gantry up` with its field path.
    if (auto c = ClusterConfig::Load(o.config); !c.ok()) return Fail(c.status());
  }
  std::set<std::string> already;
  for (const char* svc : {kStorage, kMonitor, kCoordinator}) {
    if (dir.ReadServiceInfo(svc).ok()) already.insert(svc);
  }
  if (auto state = ReadSupervisorState(dir); state && (*state)["alive"].get<bool>()) {
    pid_t pid = (*state)["pid"].get<pid_t>();
    if (already.size() == 3) {
      std::cout << "Gantry is already running for " << dir.root() << " (supervisor pid " << pid << ")\n";
      PrintServices(dir, already);
      return 0;
    }
    std::cout << "asking the supervisor (pid " << pid << ") to start what is not running" << std::endl;
    double since = WallNow();
    ::kill(pid, SIGHUP);
    return WaitUp(dir, pid, already, o, since);
  }
  if (!o.detach) return Supervise(ctx, o, /*foreground=*/true);
  SpawnOptions so;
  so.argv = {bin + "/gantry", "--data-dir", dir.root(), "supervise", "--slots", std::to_string(o.slots),
             "--port-base", std::to_string(o.port_base), "--stop-grace", std::to_string(o.stop_grace),
             "--start-timeout", std::to_string(o.start_timeout)};
  if (!o.config.empty()) so.argv.insert(so.argv.end(), {"--config", o.config});
  if (o.slots_given) so.argv.push_back("--slots-given");
  if (o.ports_given) so.argv.push_back("--ports-given");
  so.stdout_path = dir.Path("logs/supervisor.out");
  so.new_session = true;  // outlives this command and the terminal
  auto child = ChildProcess::Spawn(so);
  if (!child.ok()) return Fail(child.status());
  pid_t pid = child->pid();
  int rc = WaitUp(dir, pid, already, o, 0);
  if (rc != 0) {
    child->Terminate(std::chrono::seconds(5));
    return rc;
  }
  child->Release();
  return 0;
}

// Stops the supervisor so it restarts nothing that `down` stops; a
// foreground supervisor (`gantry up` in a terminal) stops its services too.
void StopSupervisor(const DataDir& dir, double timeout_s) {
  auto state = ReadSupervisorState(dir);
  if (!state) return;
  pid_t pid = (*state)["pid"].get<pid_t>();
  if ((*state)["alive"].get<bool>()) {
    ::kill(pid, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(timeout_s * 1000));
    while (ProcessAlive(pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (ProcessAlive(pid)) {
      ::kill(pid, SIGKILL);
      std::cout << "killed supervisor (pid " << pid << ") after " << timeout_s << " s\n";
    } else {
      std::cout << "stopped supervisor (pid " << pid << ")\n";
    }
  }
  std::error_code ec;
  std::filesystem::remove(SupervisorFile(dir), ec);
}

int Down(Context& ctx, double timeout_s) {
  DataDir dir = ctx.dir();
  // A client the services refuse (CURVE: no key, or one not authorised)
  // stops nothing, not even by signal around the authentication.
  for (const char* svc : {kCoordinator, kMonitor, kStorage}) {
    if (!dir.ReadServiceInfo(svc).ok()) continue;
    auto ping = ctx.Call(svc, "ping", json::object(), std::chrono::seconds(5));
    if (!ping.ok() && ping.status().code() == StatusCode::kFailedPrecondition) return Fail(ping.status());
    break;
  }
  bool any = ReadSupervisorState(dir).has_value();
  StopSupervisor(dir, timeout_s);
  for (const char* svc : {kCoordinator, kMonitor, kStorage}) {
    auto info = dir.ReadServiceInfo(svc);
    if (!info.ok()) continue;
    any = true;
    auto sent = ctx.Call(svc, "shutdown", json::object(), std::chrono::seconds(5));
    if (!sent.ok()) ::kill(info->pid, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(timeout_s * 1000));
    while (ProcessAlive(info->pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (ProcessAlive(info->pid)) {
      ::kill(info->pid, SIGKILL);
      std::cout << "killed " << svc << " (pid " << info->pid << ") after " << timeout_s << " s\n";
      dir.RemoveServiceInfo(svc);
    } else {
      std::cout << "stopped " << svc << " (pid " << info->pid << ")\n";
    }
  }
  if (!any) std::cout << "no Gantry cluster is running for " << dir.root() << "\n";
  return 0;
}

int StatusCmd(Context& ctx, bool as_json) {
  DataDir dir = ctx.dir();
  json out = {{"data_dir", dir.root()}, {"services", json::object()}};
  auto sup = ReadSupervisorState(dir);
  if (sup && !(*sup)["alive"].get<bool>()) sup.reset();  // a stale file from a killed supervisor
  out["supervisor"] = sup ? json{{"pid", (*sup)["pid"]}, {"state", "up"}} : json{{"state", "none"}};
  int up = 0;
  for (const char* svc : {kCoordinator, kStorage, kMonitor}) {
    json s = {{"state", "down"}};
    if (auto info = dir.ReadServiceInfo(svc); info.ok()) {
      s = {{"pid", info->pid}, {"endpoints", info->endpoints}};
      auto ping = ctx.Call(svc, "ping", json::object(), std::chrono::seconds(3));
      s["state"] = ping.ok() ? "up" : "not answering";
      if (ping.ok()) ++up;
    }
    if (sup && (*sup)["services"].contains(svc)) {
      const json& r = (*sup)["services"][svc];
      json v = {{"state", r.value("state", "")}, {"restarts", r.value("restarts", 0)}};
      for (const char* k : {"last_exit", "last_exit_time", "last_error", "next_restart_in_s"}) {
        if (r.contains(k)) v[k] = r[k];
      }
      s["supervisor"] = v;
    }
    out["services"][svc] = s;
  }
  if (auto cs = ctx.Call(kCoordinator, "cluster_status", json::object(), std::chrono::seconds(3)); cs.ok()) {
    out["cluster"] = *cs;
  }
  if (as_json) {
    PrintJson(out);
  } else {
    std::cout << "Gantry cluster in " << dir.root() << "\n";
    for (const char* svc : {kCoordinator, kStorage, kMonitor}) {
      const json& s = out["services"][svc];
      std::cout << "  " << svc << std::string(13 - std::strlen(svc), ' ') << s["state"].get<std::string>();
      if (s.contains("pid")) std::cout << "  pid " << s["pid"];
      if (s.contains("endpoints")) {
        for (auto& [k, v] : s["endpoints"].items()) std::cout << "  " << k << " " << v.get<std::string>();
      }
      std::cout << "\n";
      if (s.contains("supervisor")) {
        const json& v = s["supervisor"];
        std::string st = v["state"].get<std::string>();
        if (st == "running" && v["restarts"] == 0) continue;
        std::cout << "               restarts " << v["restarts"];
        if (v.contains("last_exit")) {
          std::cout << ", last exit " << v["last_exit"].get<std::string>() << " at "
                    << FormatTime(v["last_exit_time"].get<double>());
        }
        if (st == "crash-loop") std::cout << "; CRASH-LOOPING: not restarted any more (`gantry up` retries)";
        if (st == "restarting") std::cout << "; restarting";
        if (st == "stopped") std::cout << "; stopped (not restarted)";
        std::cout << "\n";
        if (v.contains("last_error") && st != "running") {
          std::string err = v["last_error"].get<std::string>();
          std::cout << "               last start failed: " << err.substr(0, err.find('\n')) << "; see "
                    << dir.LogFile(svc) << "\n";
        }
      }
    }
    if (sup) {
      std::cout << "  supervisor   up  pid " << (*sup)["pid"] << " (restarts services that die)\n";
    } else {
      std::cout << "  supervisor   none (a service that dies is not restarted; `gantry up` starts one)\n";
    }
    if (out.contains("cluster")) {
      const json& c = out["cluster"];
      std::cout << "Slots: " << c["slots_free"] << " of " << c["slots_total"] << " free; " << c["jobs_running"]
                << " running, " << c["jobs_queued"] << " queued\n";
      if (c.value("gpus_total", 0) > 0) {
        std::string in_use;
        for (const auto& h : c.value("hosts", json::array())) {
          for (const auto& g : h.value("gpus_used", json::array())) {
            in_use += (in_use.empty() ? "" : ", ") + h.value("name", std::string()) + ":" + std::to_string(g.get<int>());
          }
        }
        std::cout << "GPU slots: " << c["gpus_free"] << " of " << c["gpus_total"] << " free"
                  << (in_use.empty() ? "" : " (in use: " + in_use + ")") << "\n";
      } else if (c.contains("gpus_total")) {
        std::cout << "GPU slots: none (a GPU host declares hosts[].gpus in the cluster config)\n";
      }
    }
    if (up < 3 && sup) {
      std::cout << "The supervisor restarts a service that died; `gantry up` also retries a crash-looping one.\n";
    } else if (up < 3) {
      std::cout << "Start the cluster with `gantry up` (add --detach to run it in the background).\n";
    }
  }
  return up == 3 ? 0 : 1;
}

}  // namespace

void AddClusterCommands(CLI::App& app, Context& ctx, Action& action) {
  auto opts = std::make_shared<UpOptions>();
  auto* up = app.add_subcommand("up", "Start the coordinator, storage and monitor for this machine");
  up->add_flag("-d,--detach", opts->detach, "Run in the background and return");
  up->add_option("--slots", opts->slots, "Slots to schedule (default: CPU cores)")->check(CLI::PositiveNumber);
  up->add_option("--port-base", opts->port_base,
                 "First of five ports (API 7600, storage +1, monitor +2..+4); 0 picks free ports");
  up->add_option("--stop-grace", opts->stop_grace, "Seconds jobs get to stop before SIGKILL");
  up->add_option("--start-timeout", opts->start_timeout, "Seconds each service gets to become ready");
  up->add_option("--config", opts->config,
                 "Cluster config (configs/cluster.yaml): hosts with CPU and GPU slots, launcher, scheduler policy, "
                 "auth, and the services' addresses (unless --port-base is given)")
      ->check(CLI::ExistingFile);
  up->callback([&ctx, &action, opts, up] {
    opts->slots_given = up->count("--slots") > 0;
    opts->ports_given = up->count("--port-base") > 0;
    if (!opts->config.empty()) opts->config = std::filesystem::absolute(opts->config).string();
    action = [&ctx, opts] { return Up(ctx, *opts); };
  });

  // Hidden: the background supervisor that `gantry up --detach` starts.
  auto sopts = std::make_shared<UpOptions>();
  auto* sv = app.add_subcommand("supervise", "Supervise the cluster's services (started by gantry up --detach)");
  sv->group("");
  sv->add_option("--slots", sopts->slots)->check(CLI::PositiveNumber);
  sv->add_option("--port-base", sopts->port_base);
  sv->add_option("--stop-grace", sopts->stop_grace);
  sv->add_option("--start-timeout", sopts->start_timeout);
  sv->add_option("--config", sopts->config);
  sv->add_flag("--slots-given", sopts->slots_given);
  sv->add_flag("--ports-given", sopts->ports_given);
  sv->callback([&ctx, &action, sopts] {
    action = [&ctx, sopts] { return Supervise(ctx, *sopts, /*foreground=*/false); };
  });

  auto timeout = std::make_shared<double>(60);
  auto* down = app.add_subcommand("down", "Stop the cluster's services (running jobs are stopped and requeued)");
  down->add_option("--timeout", *timeout, "Seconds to wait for each service before SIGKILL");
  down->callback([&ctx, &action, timeout] { action = [&ctx, timeout] { return Down(ctx, *timeout); }; });

  auto as_json = std::make_shared<bool>(false);
  auto* status = app.add_subcommand("status", "Show each service and the free slots");
  status->add_flag("--json", *as_json, "Machine-readable output");
  status->callback([&ctx, &action, as_json] { action = [&ctx, as_json] { return StatusCmd(ctx, *as_json); }; });
}

}  // namespace gantry::cli
