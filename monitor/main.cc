// gantry-monitor: metrics ingest, live feed and metrics API (see
// monitor_service.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <zmq.hpp>

#include "common/cluster_config.h"
#include "common/curve.h"
#include "common/data_dir.h"
#include "common/log.h"
#include "common/service.h"
#include "common/signal_fd.h"
#include "monitor/alert_wiring.h"
#include "monitor/drift_watcher.h"
#include "monitor/alerts/webhook_notifier.h"
#include "common/http/server.h"
#include "common/http/token.h"
#include "monitor/http_api.h"
#include "monitor/metrics_store.h"
#include "monitor/monitor_api.h"
#include "monitor/monitor_service.h"
#include "monitor/serving_drift.h"

namespace {

int Fail(const gantry::Status& s) {
  spdlog::error("gantry-monitor: {}", s.ToString());
  return 1;
}

std::string Loopback(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

// "HOST:PORT" (port 0 picks a free one) -> options.
gantry::Status ParseHttpBind(const std::string& s, gantry::http::HttpServerOptions& o) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return gantry::Status::InvalidArgument("--http must be HOST:PORT like 127.0.0.1:8600 (got '" + s + "')");
  }
  try {
    size_t used = 0;
    int port = std::stoi(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1 || port < 0 || port > 65535) throw std::out_of_range(s);
    o.port = static_cast<uint16_t>(port);
  } catch (const std::exception&) {
    return gantry::Status::InvalidArgument("--http port must be 0..65535 (got '" + s + "')");
  }
  o.address = s.substr(0, colon);
  return gantry::Status::Ok();
}

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
  std::string http_bind = "127.0.0.1:" + std::to_string(gantry::kMonitorHttpPort);
  std::string alerts_file;
  std::string coordinator;
  std::string log_level = "info";
  std::string auth = "none", keys_dir;
  gantry::monitor::DriftWatchOptions drift_watch;
  gantry::monitor::ServingDriftOptions serving_drift;
  std::string config_path;
  app.add_option("--data-dir", data_dir, "data directory (default: the --config's data_dir)");
  app.add_option("--config", config_path,
                 "Cluster config (configs/cluster.yaml): data_dir, monitor.{ingest,feed,api,http,drift_watch} and "
                 "auth, unless given here");
  app.add_option("--ingest", options.ingest_bind, "PULL endpoint for metrics (port 0 or * picks a free port)");
  app.add_option("--feed", options.feed_bind, "PUB endpoint of the live feed");
  app.add_option("--api", api_bind, "request/reply API endpoint");
  app.add_option("--http", http_bind, "HTTP address HOST:PORT (port 0 picks a free one)");
  app.add_option("--auth", auth, "none (loopback only) or curve (ZeroMQ CURVE; clients need an authorised key)")
      ->check(CLI::IsMember({"none", "curve"}));
  app.add_option("--keys", keys_dir, "CURVE keys directory (default: <data>/keys, created when missing)");
  app.add_option("--alerts", alerts_file,
                 "cluster alert rules (default: <data>/alerts.yaml if present, else the built-in configs/alerts.yaml)");
  app.add_option("--coordinator", coordinator,
                 "coordinator api endpoint for `action: cancel` (default: from the coordinator's run file)");
#if GANTRY_HAVE_DRIFT_WATCH
  app.add_option("--drift-watch", drift_watch.dir, "dataset directory whose new shards are checked for drift");
  app.add_option("--drift-reference", drift_watch.reference,
                 "reference of --drift-watch: a dataset path, or MODEL@VERSION (the profile stored with it)");
  app.add_option("--drift-interval", drift_watch.interval_seconds, "seconds between listings of --drift-watch");
#endif
  app.add_option("--serving-drift-window", serving_drift.window_rows,
                 "rows of sampled requests per drift window of a deployed model (the profile is calibrated on 1000)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  CLI11_PARSE(app, argc, argv);
  if (!config_path.empty()) {
    auto cluster = gantry::ClusterConfig::Load(config_path);
    if (!cluster.ok()) return Fail(cluster.status());
    if (data_dir.empty()) data_dir = cluster->data_dir;
    if (app.count("--ingest") == 0) options.ingest_bind = cluster->monitor_ingest;
    if (app.count("--feed") == 0) options.feed_bind = cluster->monitor_feed;
    if (app.count("--api") == 0) api_bind = cluster->monitor_api;
    if (app.count("--http") == 0) http_bind = cluster->monitor_http;
    if (app.count("--auth") == 0) auth = cluster->auth;
    // monitor.drift_watch: the flags win, as a whole (a --drift-watch on the
    // command line does not mix with the config's reference).
    if (app.count("--drift-watch") == 0 && !cluster->drift_watch.dir.empty()) {
      drift_watch.dir = cluster->drift_watch.dir;
      if (app.count("--drift-reference") == 0) drift_watch.reference = cluster->drift_watch.reference;
      if (app.count("--drift-interval") == 0) drift_watch.interval_seconds = cluster->drift_watch.interval_seconds;
    }
  }
  if (data_dir.empty()) {
    std::fprintf(stderr, "gantry-monitor: --data-dir is required (or data_dir in the --config file)\n");
    return 2;
  }

  gantry::DataDir dir(data_dir);
  gantry::InitLogging(gantry::kMonitor, dir.LogFile(gantry::kMonitor), log_level);
  if (auto s = dir.Ensure(); !s.ok()) return Fail(s);

  gantry::http::HttpServerOptions http_options;
  if (auto s = ParseHttpBind(http_bind, http_options); !s.ok()) return Fail(s);
  // Like the ZeroMQ sockets: reachable from other hosts only in a cluster
  // that authenticates (its mutating routes need the bearer token).
  if (auto s = gantry::CheckBindAllowed(http_bind, auth == "curve", "--http"); !s.ok()) return Fail(s);
  auto token = gantry::http::LoadOrCreateToken(dir.Path(gantry::http::kTokenFileName));
  if (!token.ok()) return Fail(token.status());
  http_options.token = *token;
  http_options.threads = 2;

  auto store = gantry::monitor::MetricsStore::Open(dir.Path("monitor.db"));
  if (!store.ok()) return Fail(store.status());
  // A second connection for the HTTP threads' queries (WAL: reads while ingest writes).
  auto query_store = gantry::monitor::MetricsStore::Open(dir.Path("monitor.db"));
  if (!query_store.ok()) return Fail(query_store.status());
  auto alert_store = gantry::monitor::alerts::AlertStore::Open(dir.Path("monitor.db"));
  if (!alert_store.ok()) return Fail(alert_store.status());
  auto rules = gantry::monitor::LoadAlertRules(alerts_file, dir);
  if (!rules.ok()) return Fail(rules.status());

  gantry::SystemClock clock;
  zmq::context_t ctx(1);
  // Before any socket: CURVE settings and the ZAP handler (common/curve.h).
  auto zap = gantry::SetUpServiceCurve(ctx, auth, keys_dir, dir.root());
  if (!zap.ok()) return Fail(zap.status());
  gantry::monitor::MonitorService monitor(ctx, std::move(store).value(), clock, options);
  // SQLite commits on a thread of their own, off the ingest loop (acks still
  // follow commits); the store above then serves the ingest thread's reads.
  auto writer_store = gantry::monitor::MetricsStore::Open(dir.Path("monitor.db"));
  if (!writer_store.ok()) return Fail(writer_store.status());
  monitor.WriteOnThread(std::move(writer_store).value());

  // Alerts: transitions go to the store, the webhook, the feed, SSE and (cancel) the coordinator.
  gantry::monitor::HttpApi* api_ptr = nullptr;
  auto publish = [&monitor, &api_ptr](const gantry::monitor::alerts::Transition& t) {
    monitor.Publish("alert/" + t.alert.key.job,
                    gantry::ToMsgpack({{"type", "alert"}, {"body", gantry::monitor::AlertApiJson(t.alert)}}));
    if (api_ptr) api_ptr->PublishAlert(t);
  };
  gantry::monitor::AlertWiring alerting(
      clock, std::move(rules).value(), std::move(alert_store).value(),
      std::make_unique<gantry::monitor::alerts::WebhookNotifier>(),
      std::make_unique<gantry::monitor::Canceller>(ctx, dir, coordinator), publish);
  if (auto s = alerting.Restore(); !s.ok()) return Fail(s.WithContext("restoring alerts"));

  gantry::monitor::HttpApi api(std::move(query_store).value(), &alerting.engine());
  api_ptr = &api;
  if (auto s = api.Restore(); !s.ok()) return Fail(s.WithContext("reading the stored jobs"));
  monitor.AddObserver(&api);
  monitor.AddObserver(&alerting);
  // Drift windows of served requests: each result goes to SSE and the alert rules.
  auto serving = gantry::monitor::ServingDrift::Create(
      serving_drift, dir.Path("drift.db"), gantry::monitor::StorageProfileFetch(dir), clock,
      [&api, &alerting](const gantry::monitor::DriftRecord& r) {
        api.PublishDrift(r);
        alerting.QueueDrift({r.dataset, r.share, r.drifted, r.tested, r.dataset_drift, r.share_threshold});
      });
  if (!serving.ok()) return Fail(serving.status());
  monitor.AddObserver(serving->get());
#if GANTRY_HAVE_DRIFT_WATCH
  std::unique_ptr<gantry::monitor::DriftWatcher> watcher;
#endif
  // /api/drift, /metrics and the page: dataset shards and serving windows, newest first.
  api.SetDriftSource([&] {
    std::vector<gantry::monitor::DriftRecord> all = (*serving)->Recent();
#if GANTRY_HAVE_DRIFT_WATCH
    if (watcher) {
      std::vector<gantry::monitor::DriftRecord> shards = watcher->Recent();
      all.insert(all.end(), shards.begin(), shards.end());
    }
#endif
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.time > b.time; });
    return all;
  });
#if GANTRY_HAVE_DRIFT_WATCH
  // Continuous drift: each new shard's result goes to SSE and the alert rules.
  if (!drift_watch.dir.empty()) {
    auto w = gantry::monitor::DriftWatcher::Create(
        drift_watch, dir, [&api, &alerting](const gantry::monitor::DriftRecord& r) {
          api.PublishDrift(r);
          alerting.QueueDrift({r.dataset, r.share, r.drifted, r.tested, r.dataset_drift, r.share_threshold});
        });
    if (!w.ok()) return Fail(w.status());
    watcher = std::move(w).value();
  }
#endif
  auto router = std::make_shared<gantry::http::Router>();
  if (auto s = api.Install(*router); !s.ok()) return Fail(s);
  gantry::http::HttpServer http(http_options, router);
  if (auto s = http.Start(); !s.ok()) return Fail(s);
  gantry::RpcServerOptions api_options;
  api_options.bind = api_bind;
  api_options.tick_interval = gantry::monitor::kFlushTick;
  gantry::RpcServer server(ctx, api_options);
  monitor.Attach(server);
  gantry::monitor::RegisterAlertHandlers(server, alerting.engine());
  if (auto s = monitor.Bind(); !s.ok()) return Fail(s);
  if (auto s = server.Bind(); !s.ok()) return Fail(s);

  gantry::ServiceInfo info{gantry::kMonitor, ::getpid(),
                           {{"api", server.endpoint()},
                            {"ingest", monitor.ingest_endpoint()},
                            {"feed", monitor.feed_endpoint()},
                            {"http", "http://" + http_options.address + ":" + std::to_string(http.port())}}};
  (*serving)->Start();
#if GANTRY_HAVE_DRIFT_WATCH
  if (watcher) watcher->Start();
#endif
  gantry::Status served = gantry::RunService(server, *signals, dir, info);
#if GANTRY_HAVE_DRIFT_WATCH
  if (watcher) watcher->Stop();
#endif
  (*serving)->Stop();
  http.Stop();
  gantry::Status flushed = monitor.Shutdown();
  if (!served.ok()) return Fail(served);
  if (!flushed.ok()) return Fail(flushed.WithContext("final metrics flush"));
  return 0;
}
