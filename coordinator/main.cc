// gantry-coordinator: job queue, gang scheduler and launcher for one cluster.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <thread>

#include "common/cluster_config.h"
#include "common/curve.h"
#include "common/log.h"
#include "common/process.h"
#include "common/service.h"
#include "coordinator/coordinator.h"
#include "coordinator/deployment_service.h"
#include "coordinator/deployments.h"
#include "coordinator/hosts_launcher.h"
#include "coordinator/retrain/schedule_service.h"
#include "coordinator/service.h"
#include "coordinator/slurm_launcher.h"

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
  app.add_option("--data-dir", data_dir, "Data directory (default: the --config's data_dir)");
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
  std::string auth, keys_dir;
  app.add_option("--auth", auth,
                 "none (loopback only) or curve (ZeroMQ CURVE; clients need an authorised key); default: the "
                 "config's auth, else none")
      ->check(CLI::IsMember({"none", "curve"}));
  app.add_option("--keys", keys_dir, "CURVE keys directory (default: <data>/keys, created when missing)");
  std::string config_path;
  app.add_option("--config", config_path,
                 "Cluster config (configs/cluster.yaml): the hosts' CPU and GPU slots, the launcher, the scheduler "
                 "policy, and unless given here data_dir, coordinator.bind, auth and the storage and monitor "
                 "endpoints (storage.bind, monitor.ingest)");
  CLI11_PARSE(app, argc, argv);

  // The slots: the config's hosts, else this host (--slots CPU slots and
  // the GPUs detected here). --slots given with a one-host config sets its
  // CPU slots.
  auto cluster = config_path.empty() ? ClusterConfig::Parse(json(), slots, DetectGpus())
                                     : ClusterConfig::Load(config_path);
  if (!cluster.ok()) {
    fprintf(stderr, "gantry-coordinator: %s\n", cluster.status().ToString().c_str());
    return 1;
  }
  if (!config_path.empty() && app.count("--slots") > 0) {
    if (cluster->hosts.size() != 1) {
      fprintf(stderr, "gantry-coordinator: --slots sets the CPU slots of a one-host cluster, but %s declares %zu "
                      "hosts: set hosts[].cpus there instead\n", config_path.c_str(), cluster->hosts.size());
      return 1;
    }
    cluster->hosts[0].cpus = slots;
  }
  if (!config_path.empty() && app.count("--stop-grace") == 0) stop_grace = cluster->stop_grace_seconds;
  if (!config_path.empty()) {
    if (data_dir.empty()) data_dir = cluster->data_dir;
    if (app.count("--bind") == 0) bind = cluster->coordinator_bind;
    if (app.count("--storage") == 0) storage = cluster->storage_bind;
    if (app.count("--monitor") == 0) monitor = cluster->monitor_ingest;
  }
  if (data_dir.empty()) {
    fprintf(stderr, "gantry-coordinator: --data-dir is required (or data_dir in the --config file)\n");
    return 2;
  }

  DataDir dir(data_dir);
  if (Status s = dir.Ensure(); !s.ok()) {
    fprintf(stderr, "gantry-coordinator: %s\n", s.ToString().c_str());
    return 1;
  }
  if (auth.empty()) auth = cluster->auth;
  if (auth == "curve") {
    // Workers and gantry-serve (children, and mpirun ranks through -x) find
    // the client keys here (common/curve.h); set before any thread starts.
    ::setenv(kKeysEnv, (keys_dir.empty() ? dir.Path(kKeysDirName) : keys_dir).c_str(), 1);
  } else {
    ::unsetenv(kKeysEnv);  // this cluster's workers must not try CURVE
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
  // Before any socket: CURVE settings and the ZAP handler (common/curve.h).
  auto zap = SetUpServiceCurve(ctx, auth, keys_dir, dir.root());
  if (!zap.ok()) {
    spdlog::critical("{}", zap.status().ToString());
    return 1;
  }
  // Bound first: workers are told this address for their heartbeats.
  RpcServer server(ctx, {bind});
  if (Status s = server.Bind(); !s.ok()) {
    spdlog::critical("{}", s.ToString());
    return 1;
  }
  SystemClock clock;
  coordinator::LocalMpiLauncher launcher({mpirun, worker_bin, mpirun_args});
  // Job attempts go through the configured launcher (launcher.kind);
  // deployments' gantry-serve always runs here, through the local one.
  std::unique_ptr<coordinator::SlurmLauncher> slurm;
  coordinator::Launcher* job_launcher = &launcher;
  if (cluster->launcher.kind == "slurm") {
    coordinator::SlurmOptions so;
    so.worker_binary = worker_bin;
    so.partition = cluster->launcher.partition;
    so.account = cluster->launcher.account;
    so.srun_args = cluster->launcher.srun_args;
    slurm = std::make_unique<coordinator::SlurmLauncher>(so, clock);
    job_launcher = slurm.get();
    spdlog::info("launcher: slurm (partition {}, account {})", so.partition.empty() ? "default" : so.partition,
                 so.account.empty() ? "default" : so.account);
  }
  std::unique_ptr<coordinator::HostsMpiLauncher> hosts_launcher;
  if (cluster->launcher.kind == "hosts") {
    coordinator::HostsOptions ho;
    ho.mpirun = mpirun;
    ho.worker_binary = worker_bin;
    ho.rsh_agent = cluster->launcher.rsh_agent;
    ho.extra_args = cluster->launcher.mpirun_args;
    ho.extra_args.insert(ho.extra_args.end(), mpirun_args.begin(), mpirun_args.end());
    // The ranks' client keys (set above with auth: curve): mpirun passes
    // them on to every host, where the same path must hold them.
    if (const char* keys = std::getenv(kKeysEnv); keys && *keys) ho.keys_dir = keys;
    // Fail now, not at the first job, when remote ranks could not reach us.
    coordinator::LaunchRequest probe;
    probe.storage_endpoint = storage;
    probe.monitor_endpoint = monitor;
    probe.coordinator_endpoint = server.endpoint();
    for (const auto& h : cluster->hosts) probe.hosts.push_back(h.name);
    if (Status s = coordinator::CheckRemoteEndpoints(probe); !s.ok()) {
      spdlog::critical("{}", s.ToString());
      fprintf(stderr, "gantry-coordinator: %s\n", s.ToString().c_str());
      return 1;
    }
    hosts_launcher = std::make_unique<coordinator::HostsMpiLauncher>(ho);
    job_launcher = hosts_launcher.get();
    std::string names;
    for (const auto& h : cluster->hosts) names += (names.empty() ? "" : ", ") + h.name;
    spdlog::info("launcher: hosts ({}; rsh agent {})", names, ho.rsh_agent.empty() ? "ssh" : ho.rsh_agent);
  }
  coordinator::MonitorEventSink events(ctx, monitor);
  coordinator::StorageRetention retention(ctx, storage);
  coordinator::CoordinatorOptions options;
  options.slots = slots;
  options.hosts = cluster->hosts;
  options.scheduler = cluster->scheduler;
  spdlog::info("slots: {} cpu and {} gpu on {} host(s); backfill {}, preemption {}", cluster->TotalCpus(),
               cluster->TotalGpus(), cluster->hosts.size(), cluster->scheduler.backfill ? "on" : "off",
               cluster->scheduler.preemption ? "on" : "off");
  options.storage_endpoint = storage;
  options.monitor_endpoint = monitor;
  options.coordinator_endpoint = server.endpoint();
  options.stop_grace = std::chrono::milliseconds(static_cast<int64_t>(stop_grace * 1000));
  coordinator::Coordinator coord(options, dir, std::move(store).value(), *job_launcher, events, retention, clock);
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

  // Retraining schedules (docs/retraining.md): runs are jobs of `coord`,
  // aliases move in storage.
  coordinator::StorageRegistry registry(ctx, storage);
  auto schedules = coordinator::Schedules::Open(dir.Path("coordinator.db"), coord, registry, clock);
  if (!schedules.ok()) {
    spdlog::critical("opening the retraining schedules: {}", schedules.status().ToString());
    return 1;
  }
  (*schedules)->SetModelOfSource([&deployments](const std::string& source) {
    auto d = deployments.Get(source);
    return d.ok() ? d->spec.model : std::string();
  });

  coordinator::RegisterHandlers(server, coord);
  coordinator::RegisterDeploymentHandlers(server, deployments, deploy_options.host);
  coordinator::RegisterScheduleHandlers(server, **schedules);
  // Replaces RegisterHandlers' tick: one loop turn drives jobs, deployments
  // and retraining schedules.
  server.OnTick([&coord, &deployments, &schedules] {
    coord.Tick();
    deployments.Tick();
    (*schedules)->Tick();
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
