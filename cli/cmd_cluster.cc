// gantry up / down / status: the embedded cluster on one machine.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/signal_fd.h"

namespace gantry::cli {
namespace {

struct UpOptions {
  bool detach = false;
  int slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int port_base = kCoordinatorPort;
  std::string host = "127.0.0.1";
  double stop_grace = 10;
  double start_timeout = 30;
};

struct Started {
  std::string name;
  ChildProcess child;
  ServiceInfo info;
};

// The last lines of a service's own output, to explain why it died.
std::string Tail(const std::string& path, size_t max_lines = 12) {
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

// Polls until the service publishes its run file and answers ping.
Result<ServiceInfo> WaitReady(Context& ctx, const DataDir& dir, Started& s, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(timeout_s * 1000));
  std::string out = dir.Path("logs/" + s.name + ".out");
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto e = s.child.Poll()) {
      return Status::Unavailable("gantry-" + s.name + " exited during start-up (" + e->ToString() +
                                 "); its output:\n" + Tail(out) + "  full log: " + dir.LogFile(s.name));
    }
    auto info = dir.ReadServiceInfo(s.name);
    if (info.ok() && info->pid == s.child.pid()) {
      RpcClient c(ctx.zmq(), info->endpoints.at("api"), std::chrono::milliseconds(1000));
      if (c.Call("ping").ok()) return info;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::DeadlineExceeded("gantry-" + s.name + " did not become ready within " +
                                  std::to_string(int(timeout_s)) + " s; see " + dir.LogFile(s.name));
}

std::string Addr(const UpOptions& o, int offset) {
  int port = o.port_base == 0 ? 0 : o.port_base + offset;
  return "tcp://" + o.host + ":" + std::to_string(port);
}

// Stops started services in reverse order: SIGTERM, then SIGKILL after `grace`.
void StopAll(std::vector<Started>& started, std::chrono::milliseconds grace) {
  for (auto it = started.rbegin(); it != started.rend(); ++it) {
    if (it->child.running()) {
      ExitInfo e = it->child.Terminate(grace);
      std::cerr << "stopped " << it->name << " (" << e.ToString() << ")\n";
    }
  }
}

int Up(Context& ctx, const UpOptions& o) {
  // Before any socket exists, so every thread inherits the blocked signals.
  auto signals = SignalFd::Create();
  if (!signals.ok()) return Fail(signals.status());
  DataDir dir = ctx.dir();
  if (Status s = dir.Ensure(); !s.ok()) return Fail(s);
  for (const char* svc : {kCoordinator, kStorage, kMonitor}) {
    if (auto info = dir.ReadServiceInfo(svc); info.ok()) {
      return Fail(Status::AlreadyExists("a Gantry cluster is already running for " + dir.root() + " (" + svc +
                                        " pid " + std::to_string(info->pid) + "); stop it with `gantry down`"));
    }
  }
  std::string bin = SelfDir();
  for (const char* b : {"gantry-storage", "gantry-monitor", "gantry-coordinator", "gantry-worker"}) {
    if (!PathExists(bin + "/" + b)) {
      return Fail(Status::NotFound(std::string("cannot find ") + b + " next to gantry in " + bin +
                                   " (build everything with ./scripts/demo.sh or cmake --build)"));
    }
  }
  std::vector<Started> started;
  auto start = [&](const std::string& name, std::vector<std::string> args) -> Status {
    SpawnOptions so;
    so.argv = {bin + "/gantry-" + name, "--data-dir", dir.root()};
    so.argv.insert(so.argv.end(), args.begin(), args.end());
    so.stdout_path = dir.Path("logs/" + name + ".out");
    so.new_session = true;  // survives the terminal when detached; we signal it ourselves
    GANTRY_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(so));
    started.push_back({name, std::move(child), {}});
    GANTRY_ASSIGN_OR_RETURN(started.back().info, WaitReady(ctx, dir, started.back(), o.start_timeout));
    return Status::Ok();
  };
  auto grace = std::chrono::milliseconds(int64_t(o.stop_grace * 1000) + 5000);
  Status s = start(kStorage, {"--bind", Addr(o, 1)});
  if (s.ok()) {
    // HTTP at base + 1000 (8600 for the default 7600); port 0 with --port-base 0.
    int http_port = o.port_base == 0 ? 0 : o.port_base + (kMonitorHttpPort - kCoordinatorPort);
    s = start(kMonitor, {"--ingest", Addr(o, 2), "--feed", Addr(o, 3), "--api", Addr(o, 4), "--http",
                         o.host + ":" + std::to_string(http_port)});
  }
  if (s.ok()) {
    s = start(kCoordinator, {"--bind", Addr(o, 0), "--slots", std::to_string(o.slots), "--storage",
                             started[0].info.endpoints.at("api"), "--monitor",
                             started[1].info.endpoints.at("ingest"), "--stop-grace",
                             std::to_string(o.stop_grace)});
  }
  if (!s.ok()) {
    StopAll(started, grace);
    return Fail(s);
  }
  std::cout << "Gantry is up (data dir " << dir.root() << ", " << o.slots << " slots)\n";
  for (auto& st : started) {
    std::cout << "  " << st.name << std::string(13 - st.name.size(), ' ') << "pid " << st.child.pid();
    for (auto& [k, v] : st.info.endpoints) std::cout << "  " << k << " " << v;
    std::cout << "\n";
  }
  std::cout << "Submit a job: gantry submit configs/jobs/fashion_mnist.yaml" << std::endl;
  if (o.detach) {
    std::cout << "Stop it with: gantry down" << std::endl;
    for (auto& st : started) st.child.Release();
    return 0;
  }
  std::cout << "Press Ctrl-C to stop (or run `gantry down`)." << std::endl;
  while (true) {
    pollfd p{signals->fd(), POLLIN, 0};
    ::poll(&p, 1, 500);
    if (p.revents & POLLIN) {
      std::cerr << "stopping Gantry...\n";
      StopAll(started, grace);
      return 0;
    }
    for (auto& st : started) {
      if (auto e = st.child.Poll()) {
        // `gantry down` from elsewhere ends services with 0: a clean stop.
        StopAll(started, grace);
        if (e->ok()) return 0;
        return Fail(Status::Internal("gantry-" + st.name + " stopped unexpectedly (" + e->ToString() +
                                     "); see " + dir.LogFile(st.name)));
      }
    }
  }
}

int Down(Context& ctx, double timeout_s) {
  DataDir dir = ctx.dir();
  bool any = false;
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
  int up = 0;
  for (const char* svc : {kCoordinator, kStorage, kMonitor}) {
    json s = {{"state", "down"}};
    if (auto info = dir.ReadServiceInfo(svc); info.ok()) {
      s = {{"pid", info->pid}, {"endpoints", info->endpoints}};
      auto ping = ctx.Call(svc, "ping", json::object(), std::chrono::seconds(3));
      s["state"] = ping.ok() ? "up" : "not answering";
      if (ping.ok()) ++up;
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
    }
    if (out.contains("cluster")) {
      const json& c = out["cluster"];
      std::cout << "Slots: " << c["slots_free"] << " of " << c["slots_total"] << " free; " << c["jobs_running"]
                << " running, " << c["jobs_queued"] << " queued\n";
    }
    if (up < 3) std::cout << "Start the cluster with `gantry up` (add --detach to run it in the background).\n";
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
  up->callback([&ctx, &action, opts] { action = [&ctx, opts] { return Up(ctx, *opts); }; });

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
