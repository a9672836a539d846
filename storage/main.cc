// gantry-storage: the checkpoint registry daemon (see registry.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <zmq.hpp>

#include "common/cluster_config.h"
#include "common/curve.h"
#include "common/data_dir.h"
#include "common/log.h"
#include "common/service.h"
#include "common/signal_fd.h"
#include "storage/registry.h"
#include "storage/registry_feed.h"
#include "storage/storage_service.h"

namespace {

int Fail(const gantry::Status& s) {
  spdlog::error("gantry-storage: {}", s.ToString());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // First, before any thread exists (zmq's included), so all inherit the mask.
  auto signals = gantry::SignalFd::Create();
  if (!signals.ok()) {
    std::fprintf(stderr, "gantry-storage: %s\n", signals.status().ToString().c_str());
    return 1;
  }

  CLI::App app{"gantry-storage: checkpoint registry"};
  std::string data_dir;
  std::string bind = "tcp://127.0.0.1:" + std::to_string(gantry::kStoragePort);
  int64_t max_message_mb = gantry::storage::kDefaultMaxMessageMb;
  std::string log_level = "info";
  std::string feed_bind;
  std::string auth = "none", keys_dir;
  std::string config_path;
  app.add_option("--data-dir", data_dir, "data directory (default: the --config's data_dir)");
  app.add_option("--config", config_path,
                 "Cluster config (configs/cluster.yaml): data_dir, storage.bind and auth, unless given here");
  app.add_option("--bind", bind, "API endpoint (port 0 or * picks a free port)");
  app.add_option("--feed", feed_bind,
                 "PUB endpoint of the registry feed (default: --bind's host, a free port; "
                 "announced in ping and run/storage.json)");
  app.add_option("--auth", auth, "none (loopback only) or curve (ZeroMQ CURVE; clients need an authorised key)")
      ->check(CLI::IsMember({"none", "curve"}));
  app.add_option("--keys", keys_dir, "CURVE keys directory (default: <data>/keys, created when missing)");
  app.add_option("--max-message-mb", max_message_mb, "largest request accepted, MiB")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  CLI11_PARSE(app, argc, argv);
  if (!config_path.empty()) {
    auto cluster = gantry::ClusterConfig::Load(config_path);
    if (!cluster.ok()) return Fail(cluster.status());
    if (data_dir.empty()) data_dir = cluster->data_dir;
    if (app.count("--bind") == 0) bind = cluster->storage_bind;
    if (app.count("--auth") == 0) auth = cluster->auth;
  }
  if (data_dir.empty()) {
    std::fprintf(stderr, "gantry-storage: --data-dir is required (or data_dir in the --config file)\n");
    return 2;
  }

  gantry::DataDir dir(data_dir);
  gantry::InitLogging(gantry::kStorage, dir.LogFile(gantry::kStorage), log_level);
  if (auto s = dir.Ensure(); !s.ok()) return Fail(s);

  gantry::SystemClock clock;
  auto registry = gantry::storage::Registry::Open(dir.root(), clock);
  if (!registry.ok()) return Fail(registry.status());

  zmq::context_t ctx(1);
  // Before any socket: CURVE settings and the ZAP handler (common/curve.h).
  auto zap = gantry::SetUpServiceCurve(ctx, auth, keys_dir, dir.root());
  if (!zap.ok()) return Fail(zap.status());
  gantry::RpcServerOptions options;
  options.bind = bind;
  options.max_message_bytes = max_message_mb << 20;
  gantry::RpcServer server(ctx, options);
  if (auto s = server.Bind(); !s.ok()) return Fail(s);
  // The feed defaults to a free port on the API's host: clients find it in
  // ping / run/storage.json, so it needs no fixed port of its own.
  if (feed_bind.empty()) {
    const std::string& api = server.endpoint();
    feed_bind = api.substr(0, api.rfind(':')) + ":0";
  }
  gantry::storage::RegistryFeed feed(ctx);
  if (auto s = feed.Bind(feed_bind); !s.ok()) return Fail(s);
  gantry::storage::RegisterStorageHandlers(server, *registry, &feed);

  gantry::ServiceInfo info{gantry::kStorage, ::getpid(), {{"api", server.endpoint()}, {"feed", feed.endpoint()}}};
  if (auto s = gantry::RunService(server, *signals, dir, info); !s.ok()) return Fail(s);
  return 0;
}
