// gantry-coordinator: job queue, gang scheduler and launcher for one cluster.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <thread>

#include "common/log.h"
#include "common/process.h"
#include "common/service.h"
#include "coordinator/coordinator.h"
#include "coordinator/deployment_service.h"
#include "coordinator/deployments.h"
#include "coordinator/service.h"

namespace {

int Run(int argc, char** argv) {
  using namespace gantry;
  auto signals = SignalFd::Create();
  if (!signals.ok()) {
    fprintf(stderr, "gantry-coordinator: %s\n", signals.status().ToString().c_str());
    return 1;
  }
  CLI::App app{"gantry-coordinator: queues jobs and gang-schedules them onto MPI workers"};
  std::string data_dir, bind = "tcp://127.0.0.1:" + std::to_string(kCoordinatorPort);
  std::string storage, monitor, log_level = "info", mpirun = "mpirun", worker_bin, serve_bin;
  std::vector<std::string> mpirun_args;
  int slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  double stop_grace = 10;
  app.add_option("--data-dir", data_dir, "Data directory")->required();
  app.add_option("--bind", bind, "API address (port 0 = any free port)");
  app.add_option("--slots", slots, "Slots on this machine (default: cores)")->check(CLI::PositiveNumber);
  app.add_option("--storage", storage, "Storage API endpoint handed to workers");
  app.add_option("--monitor", monitor, "Monitor ingest endpoint handed to workers");
  app.add_option("--mpirun", mpirun, "mpirun executable");
  app.add_option("--mpirun-arg", mpirun_args, "Extra mpirun argument (repeatable)");
  app.add_option("--worker-bin", worker_bin, "gantry-worker executable (default: next to this binary)");
  app.add_option("--serve-bin", serve_bin, "gantry-serve executable for deployments (default: next to this binary)");
  app.add_option("--stop-grace", stop_grace, "Seconds between SIGTERM and SIGKILL for stopped jobs");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  CLI11_PARSE(app, argc, argv);

  DataDir dir(data_dir);
  if (Status s = dir.Ensure(); !s.ok()) {
    fprintf(stderr, "gantry-coordinator: %s\n", s.ToString().c_str());
    return 1;
  }
  InitLogging("coordinator", dir.LogFile(kCoordinator), log_level);
  if (worker_bin.empty()) worker_bin = SelfDir() + "/gantry-worker";
  if (serve_bin.empty()) serve_bin = SelfDir() + "/gantry-serve";

  auto store = coordinator::JobStore::Open(dir.Path("coordinator.db"));
  if (!store.ok()) {
    spdlog::critical("{}", store.status().ToString());
    return 1;
  }
  auto deployment_store = coordinator::DeploymentStore::Open(dir.Path("coordinator.db"));
  if (!deployment_store.ok()) {
    spdlog::critical("{}", deployment_store.status().ToString());
    return 1;
  }
  zmq::context_t ctx;
  // Bound first: workers are told this address for their heartbeats.
  RpcServer server(ctx, {bind});
  if (Status s = server.Bind(); !s.ok()) {
    spdlog::critical("{}", s.ToString());
    return 1;
  }
  SystemClock clock;
  coordinator::LocalMpiLauncher launcher({mpirun, worker_bin, mpirun_args});
  coordinator::MonitorEventSink events(ctx, monitor);
  coordinator::StorageRetention retention(ctx, storage);
  coordinator::CoordinatorOptions options;
  options.slots = slots;
  options.storage_endpoint = storage;
  options.monitor_endpoint = monitor;
  options.coordinator_endpoint = server.endpoint();
  options.stop_grace = std::chrono::milliseconds(static_cast<int64_t>(stop_grace * 1000));
  coordinator::Coordinator coord(options, dir, std::move(store).value(), launcher, events, retention, clock);
  if (Status s = coord.Recover(); !s.ok()) {
    spdlog::critical("recovering job queue: {}", s.ToString());
    return 1;
  }

  coordinator::DeploymentsOptions deploy_options;
  deploy_options.serve_binary = serve_bin;
  deploy_options.storage_endpoint = storage;
  deploy_options.monitor_endpoint = monitor;
  deploy_options.data_dir = dir.root();
  deploy_options.policy.stop_grace = options.stop_grace;
  coordinator::Deployments deployments(deploy_options, std::move(deployment_store).value(), launcher, clock);
  if (Status s = deployments.Recover(); !s.ok()) {
    spdlog::critical("recovering deployments: {}", s.ToString());
    return 1;
  }

  coordinator::RegisterHandlers(server, coord);
  coordinator::RegisterDeploymentHandlers(server, deployments, deploy_options.host);
  // Replaces RegisterHandlers' tick: one loop turn drives jobs and deployments.
  server.OnTick([&coord, &deployments] {
    coord.Tick();
    deployments.Tick();
  });
  ServiceInfo info{kCoordinator, ::getpid(), {{"api", server.endpoint()}}};
  Status s = RunService(server, *signals, dir, info);
  coord.Shutdown();
  deployments.Shutdown();  // `gantry down`: deployments stop with the cluster
  if (!s.ok()) {
    spdlog::critical("{}", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Components return Status; this is the last guard for what a library
  // (ZeroMQ, the JSON library) throws, so the coordinator exits with a
  // message instead of aborting.
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    spdlog::critical("gantry-coordinator: {}", e.what());
    fprintf(stderr, "gantry-coordinator: %s\n", e.what());
    return 1;
  }
}
