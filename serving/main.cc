// gantry-serve: serves registry models over the Open Inference Protocol
// (KServe v2 REST) with dynamic batching and hot reload (docs/serving.md).
//
//   gantry-serve --storage tcp://HOST:PORT --model NAME@REF [--model ...]
//                --port P (0 = pick) --host 127.0.0.1 --max-batch B
//                --max-delay-ms D [--int8] [--monitor-ingest tcp://...]
//                [--sample-rate R] [--report-interval-ms MS]
//                [--data-dir DIR] [--name N] [--ready-file PATH]
//
// Start-up: subscribe to the registry feed, load and warm every model, start
// HTTP, then write the ready file ({"name","port","pid","models":[{"name",
// "version"}]}, atomically) — /v2/health/ready answers 200 from then on.
// SIGTERM/SIGINT: stop following the feed, run what is queued, close HTTP.
// Exit codes: 0 after a graceful stop, 1 when start-up fails, 2 on bad flags.
#include <poll.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <ATen/Parallel.h>
#include <zmq.hpp>

#include "common/curve.h"
#include "common/data_dir.h"
#include "common/fs.h"
#include "common/http/server.h"
#include "common/log.h"
#include "common/signal_fd.h"
#include "serving/deployed_model.h"
#include "serving/int8_linear.h"
#include "serving/monitor_reporter.h"
#include "serving/registry_client.h"
#include "serving/reloader.h"
#include "serving/serve_routes.h"
#include "serving/torch_servable.h"

namespace {

using namespace gantry;
using namespace gantry::serving;

int Fail(const Status& s) {
  spdlog::error("gantry-serve: {}", s.ToString());
  std::fprintf(stderr, "gantry-serve: %s\n", s.ToString().c_str());
  return 1;
}

struct ModelArg {
  std::string name;
  std::string ref;
};

Result<ModelArg> ParseModelArg(const std::string& s) {
  const auto at = s.find('@');
  if (at == 0 || s.empty()) return Status::InvalidArgument("--model " + s + ": expected NAME@REF (e.g. fashion@production)");
  if (at == std::string::npos) return ModelArg{s, "latest"};
  if (at + 1 == s.size()) return Status::InvalidArgument("--model " + s + ": empty REF after '@'");
  return ModelArg{s.substr(0, at), s.substr(at + 1)};
}

// The version's preprocessing and its profile's per-feature range (the
// profile's extreme points: exact for features with few distinct values,
// the sketch's outermost points otherwise).
std::shared_ptr<const InputReference> ReferenceOf(const LoadedVersion& v, size_t row_size) {
  auto ref = std::make_shared<InputReference>();
  if (v.manifest.normalize) ref->normalize = std::make_pair(v.manifest.normalize->mean, v.manifest.normalize->std);
  if (!v.profile_error.empty()) spdlog::warn("{}: drift profile unreadable, no range checks: {}", v.Source(), v.profile_error);
  if (v.profile && v.profile->features.size() == row_size) {
    for (const drift::FeatureProfile& f : v.profile->features) {
      if (f.values.empty()) return ref;
      ref->range.min.push_back(static_cast<float>(f.values.front()));
      ref->range.max.push_back(static_cast<float>(f.values.back()));
    }
  } else if (v.profile) {
    spdlog::warn("{}: drift profile has {} features, the model takes {}: no range checks", v.Source(),
                 v.profile->features.size(), row_size);
    ref->range = {};
  }
  if (ref->range.min.size() != row_size) ref->range = {};
  return ref;
}

LoadFn MakeLoader(std::shared_ptr<RegistryClient> client, bool int8) {
  return [client, int8](const std::string& model, const std::string& ref) -> Result<LoadedServable> {
    GANTRY_ASSIGN_OR_RETURN(LoadedVersion v, client->Load(model, ref, /*with_profile=*/true));
    GANTRY_ASSIGN_OR_RETURN(auto servable, TorchServable::Create(v, int8));
    LoadedServable out;
    out.metadata = servable->Metadata(model);
    out.row_size = servable->row_size();
    out.reference = ReferenceOf(v, out.row_size);
    out.model = std::move(servable);
    return out;
  };
}

}  // namespace

int main(int argc, char** argv) {
  // First, before any thread exists, so all inherit the blocked mask.
  auto signals = SignalFd::Create();
  if (!signals.ok()) {
    std::fprintf(stderr, "gantry-serve: %s\n", signals.status().ToString().c_str());
    return 1;
  }
  CLI::App app{"gantry-serve: KServe v2 model server with dynamic batching and hot reload"};
  std::string storage, host = "127.0.0.1", monitor_ingest, data_dir, name, ready_file, log_level = "info";
  std::vector<std::string> model_args;
  int port = 0;
  size_t max_batch = 64;
  int64_t max_delay_ms = 0;
  bool int8 = false;
  size_t max_body_mb = 8;
  // Requests wait for their batch without holding a thread (async infer
  // route), so one thread per core is enough.
  int threads = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  double sample_rate = 0.1;
  int64_t report_interval_ms = 1000;
  // Batches run one at a time on the HTTP threads, which share the cores
  // with it: on the 2-core bench an intra-op thread pool cost 12% of the
  // throughput at concurrency 64 (docs/performance.md, "Serving").
  int torch_threads = 1;
  app.add_option("--storage", storage, "storage service endpoint (tcp://HOST:PORT)")->required();
  app.add_option("--model", model_args, "NAME@REF to serve (REF: alias, vN or latest); repeatable")->required();
  app.add_option("--port", port, "HTTP port (0 picks a free one)")->check(CLI::Range(0, 65535));
  app.add_option("--host", host, "HTTP listen address");
  app.add_option("--max-batch", max_batch, "rows per batch (and per request)")->check(CLI::Range(size_t{1}, size_t{65536}));
  app.add_option("--max-delay-ms", max_delay_ms, "how long a request may wait for company (0: batch what is queued)")
      ->check(CLI::Range(int64_t{0}, int64_t{60'000}));
  app.add_flag("--int8", int8, "run Linear layers with dynamic int8 quantisation");
  app.add_option("--monitor-ingest", monitor_ingest, "monitor ingest endpoint: serving metrics and samples go there");
  app.add_option("--sample-rate", sample_rate, "share of answered requests whose inputs and predictions go to the monitor")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--report-interval-ms", report_interval_ms, "how often serving metrics go to the monitor")
      ->check(CLI::Range(int64_t{10}, int64_t{3'600'000}));
  app.add_option("--data-dir", data_dir, "data directory (log file under it)");
  app.add_option("--name", name, "deployment name (logs, ready file)");
  app.add_option("--ready-file", ready_file, "written atomically once serving");
  app.add_option("--max-body-mb", max_body_mb, "largest request body, MiB")->check(CLI::Range(size_t{1}, size_t{1024}));
  app.add_option("--http-threads", threads, "HTTP threads (default: the number of cores; a request waiting for its batch holds none)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--torch-threads", torch_threads,
                 "LibTorch intra-op threads per forward (default 1; more helps large models at low load)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  std::string keys;
  app.add_option("--keys", keys,
                 "CURVE keys directory (server.pub, client.key) of a cluster with auth: curve (default: "
                 "$GANTRY_KEYS, else <data-dir>/keys when storage's run file says auth: curve)");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(torch_threads);  // every thread's first forward takes it

  std::vector<ModelArg> wanted;
  for (const auto& s : model_args) {
    auto m = ParseModelArg(s);
    if (!m.ok()) {
      std::fprintf(stderr, "gantry-serve: %s\n", m.status().message().c_str());
      return 2;
    }
    wanted.push_back(*m);
  }
  if (name.empty()) name = "serve-" + wanted[0].name;
  std::string log_file;
  if (!data_dir.empty()) {
    DataDir dir(data_dir);
    if (auto s = dir.Ensure(); !s.ok()) return Fail(s);
    log_file = dir.LogFile(name);
  }
  InitLogging(name, log_file, log_level);
  if (int8) {
    auto engine = SelectQuantizedEngine();
    if (!engine.ok()) return Fail(engine.status());
    spdlog::info("int8: quantized engine {}", *engine);
  }

  // Before any socket: the cluster's client keys (common/curve.h).
  const std::string storage_auth = data_dir.empty() ? "none" : RunFileAuth(DataDir(data_dir).RunFile(kStorage));
  if (auto s = SetUpClientCurve(keys, data_dir.empty() ? "" : DataDir(data_dir).root(), storage_auth); !s.ok()) {
    return Fail(s);
  }
  zmq::context_t ctx(1);
  RegistryClient main_client(ctx, storage);
  auto feed = main_client.FeedEndpoint();
  if (!feed.ok()) return Fail(feed.status());

  // The reloader's thread has its own client (an RpcClient is one thread's).
  auto reload_client = std::make_shared<RegistryClient>(ctx, storage);
  Reloader reloader(ctx, *feed, MakeLoader(reload_client, int8),
                    [reload_client](const std::string& m, const std::string& ref) { return reload_client->Resolve(m, ref); });
  std::vector<std::string> followed;
  for (const auto& w : wanted) {
    if (FollowsRef(w.ref)) followed.push_back(w.name);
  }
  // Subscribe before the first load (reloader.h, step 1).
  if (auto s = reloader.Subscribe(followed); !s.ok()) return Fail(s);

  auto load_client = std::make_shared<RegistryClient>(ctx, storage);
  LoadFn initial = MakeLoader(load_client, int8);
  std::vector<std::unique_ptr<DeployedModel>> models;
  std::vector<DeployedModel*> raw;
  for (const auto& w : wanted) {
    for (const DeployedModel* m : raw) {
      if (m->options().name == w.name) return Fail(Status::InvalidArgument("--model " + w.name + " given twice"));
    }
    auto loaded = initial(w.name, w.ref);
    if (!loaded.ok()) return Fail(loaded.status());
    DeploymentOptions o;
    o.name = w.name;
    o.registry_model = w.name;
    o.ref = w.ref;
    o.int8 = int8;
    o.row_size = loaded->row_size;
    o.max_batch = max_batch;
    o.max_delay = std::chrono::milliseconds(max_delay_ms);
    o.limits.max_body_bytes = max_body_mb << 20;
    auto m = std::make_unique<DeployedModel>(o, ServingMetricsOptions{});
    m->Install(std::move(loaded->model), std::move(loaded->metadata), std::move(loaded->reference));
    spdlog::info("{}: serving {}@{} version {}{}", name, w.name, w.ref, m->version(), int8 ? " (int8)" : "");
    raw.push_back(m.get());
    models.push_back(std::move(m));
  }
  // Reports to the monitor (metrics every interval, a sample of requests).
  std::unique_ptr<MonitorReporter> reporter;
  if (!monitor_ingest.empty()) {
    ReporterOptions ro;
    ro.deployment = name;
    ro.interval = std::chrono::milliseconds(report_interval_ms);
    ro.sample_rate = sample_rate;
    std::vector<ReportedModel> reported;
    for (DeployedModel* m : raw) {
      reported.push_back({m->options().name, [m] { return m->version(); }, [m] { return m->Snapshot(); }});
    }
    auto r = MonitorReporter::Create(ro, std::move(reported), MakeZmqFrameSender(ctx, monitor_ingest));
    if (!r.ok()) return Fail(r.status());
    reporter = std::move(r).value();
    for (DeployedModel* m : raw) m->SetReporter(reporter.get());
    reporter->Start();
    spdlog::info("{}: reporting to the monitor at {} every {} ms, sample rate {}", name, monitor_ingest,
                 report_interval_ms, sample_rate);
  }
  auto router = MakeServeRouter(raw);
  if (!router.ok()) return Fail(router.status());
  http::HttpServerOptions ho;
  ho.address = host;
  ho.port = static_cast<uint16_t>(port);
  ho.threads = threads;
  ho.max_body_bytes = max_body_mb << 20;
  ho.max_connections = 1024;
  ho.server_name = "gantry-serve";
  http::HttpServer server(ho, *router);
  if (auto s = server.Start(); !s.ok()) return Fail(s);
  spdlog::info("{}: listening on http://{}:{}", name, host, server.port());

  if (!ready_file.empty()) {
    // Written again after every hot reload, so the coordinator shows the
    // version that serves (coordinator/deployments.h).
    auto write_ready = [&, mu = std::make_shared<std::mutex>()] {
      std::lock_guard lock(*mu);
      json ready = {{"name", name}, {"port", server.port()}, {"pid", ::getpid()}, {"models", json::array()}};
      for (const DeployedModel* m : raw) {
        ready["models"].push_back({{"name", m->options().name}, {"version", std::stoll(m->version())}});
      }
      return WriteFileAtomic(ready_file, ready.dump() + "\n");
    };
    if (auto s = write_ready(); !s.ok()) return Fail(s);
    reloader.OnInstalled([write_ready] {
      if (auto s = write_ready(); !s.ok()) spdlog::warn("rewriting the ready file: {}", s.ToString());
    });
  }
  // Last: swaps (and their ready-file rewrites) start once the server is up.
  reloader.Start(raw);

  // Wait for SIGTERM/SIGINT.
  for (;;) {
    pollfd p{signals->fd(), POLLIN, 0};
    if (::poll(&p, 1, -1) < 0 && errno != EINTR) break;
    if ((p.revents & POLLIN) != 0) {
      const int sig = signals->Read();
      if (sig == SIGTERM || sig == SIGINT) {
        spdlog::info("{}: signal {}: stopping", name, sig);
        break;
      }
    }
  }
  reloader.Stop();
  for (DeployedModel* m : raw) m->Drain();  // queued requests are answered
  server.Stop();
  if (reporter) reporter->Stop();
  spdlog::info("{}: stopped", name);
  return 0;
}
