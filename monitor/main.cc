// gantry-monitor: metrics ingest, live feed and metrics API (see
// monitor_service.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <zmq.hpp>

#include "common/data_dir.h"
#include "common/log.h"
#include "common/service.h"
#include "common/signal_fd.h"
#include "monitor/metrics_store.h"
#include "monitor/monitor_service.h"

namespace {

int Fail(const gantry::Status& s) {
  spdlog::error("gantry-monitor: {}", s.ToString());
  return 1;
}

std::string Loopback(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

}  // namespace

int main(int argc, char** argv) {
  // First, before any thread exists (zmq's included), so all inherit the mask.
  auto signals = gantry::SignalFd::Create();
  if (!signals.ok()) {
    std::fprintf(stderr, "gantry-monitor: %s\n", signals.status().ToString().c_str());
    return 1;
  }

  CLI::App app{"gantry-monitor: metrics ingest, live feed and metrics API"};
  std::string data_dir;
  gantry::monitor::MonitorOptions options;
  options.ingest_bind = Loopback(gantry::kMonitorIngestPort);
  options.feed_bind = Loopback(gantry::kMonitorFeedPort);
  std::string api_bind = Loopback(gantry::kMonitorApiPort);
  std::string log_level = "info";
  app.add_option("--data-dir", data_dir, "data directory")->required();
  app.add_option("--ingest", options.ingest_bind, "PULL endpoint for metrics (port 0 or * picks a free port)");
  app.add_option("--feed", options.feed_bind, "PUB endpoint of the live feed");
  app.add_option("--api", api_bind, "request/reply API endpoint");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  CLI11_PARSE(app, argc, argv);

  gantry::DataDir dir(data_dir);
  gantry::InitLogging(gantry::kMonitor, dir.LogFile(gantry::kMonitor), log_level);
  if (auto s = dir.Ensure(); !s.ok()) return Fail(s);

  auto store = gantry::monitor::MetricsStore::Open(dir.Path("monitor.db"));
  if (!store.ok()) return Fail(store.status());

  gantry::SystemClock clock;
  zmq::context_t ctx(1);
  gantry::monitor::MonitorService monitor(ctx, std::move(store).value(), clock, options);
  gantry::RpcServerOptions api_options;
  api_options.bind = api_bind;
  api_options.tick_interval = gantry::monitor::kFlushTick;
  gantry::RpcServer server(ctx, api_options);
  monitor.Attach(server);
  if (auto s = monitor.Bind(); !s.ok()) return Fail(s);
  if (auto s = server.Bind(); !s.ok()) return Fail(s);

  gantry::ServiceInfo info{gantry::kMonitor, ::getpid(),
                           {{"api", server.endpoint()},
                            {"ingest", monitor.ingest_endpoint()},
                            {"feed", monitor.feed_endpoint()}}};
  gantry::Status served = gantry::RunService(server, *signals, dir, info);
  gantry::Status flushed = monitor.Shutdown();
  if (!served.ok()) return Fail(served);
  if (!flushed.ok()) return Fail(flushed.WithContext("final metrics flush"));
  return 0;
}
