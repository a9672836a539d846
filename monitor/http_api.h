// HttpApi: the monitor's HTTP side (MONITOR_API.md, docs/monitor.md "HTTP
// API"): GET /metrics (Prometheus), /api/jobs, /api/jobs/{id}/metrics,
// /api/alerts, /api/drift, /api/deployments, the /events SSE stream and the
// dashboard files. Serving reports (gantry-serve's `serving_metrics`) update
// a ServingView and go out as the SSE event `serving`.
//
// Sharing with ingest: HttpApi is an IngestObserver, so on the RpcServer
// thread every accepted message updates its ReadModel (mutex-guarded) and is
// published to the SSE broadcaster (thread-safe). Series queries read the
// monitor's SQLite file through a second, read-only use connection of their
// own (`query_store`, WAL lets it read while ingest writes), guarded by a
// mutex; they see what ingest has flushed (at most IngestBufferOptions'
// max_age behind).
//
// Ownership: owns the read model, query store and broadcaster; `alerts` (may
// be null) must outlive it. Thread safety: OnMessage/OnDropped on the
// RpcServer thread, the handlers on the HTTP threads; PublishAlert from any.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "monitor/alerts/alert.h"
#include "monitor/alerts/engine.h"
#include "common/http/router.h"
#include "common/http/sse.h"
#include "monitor/drift_watcher.h"
#include "monitor/metrics_store.h"
#include "monitor/monitor_service.h"
#include "monitor/read_model.h"
#include "monitor/serving_view.h"

namespace gantry::monitor {

// max_points when the request names none.
inline constexpr int64_t kDefaultMaxPoints = 2000;
// Points read per series query: bounds one request's memory (a job with
// more points is downsampled from its first kMaxQueryPoints after `after`).
inline constexpr int64_t kMaxQueryPoints = 2'000'000;

class HttpApi final : public IngestObserver {
 public:
  HttpApi(MetricsStore query_store, const alerts::AlertEngine* alerts);

  // Rebuilds the read model from the store (every job's events and latest
  // points), so /api/jobs and /metrics show earlier jobs after a restart.
  // Call before ingest starts.
  Status Restore();
  // Adds every route (and the dashboard files when built with them).
  Status Install(http::Router& router);

  void OnMessage(const IngestMessage& msg) override;
  void OnDropped() override { model_.OnDropped(); }
  // An `alert` SSE event for one transition.
  void PublishAlert(const alerts::Transition& t);
  // Continuous drift results for /api/drift and /metrics (newest first);
  // unset: none. Call before Install.
  void SetDriftSource(std::function<std::vector<DriftRecord>()> recent) { drift_ = std::move(recent); }
  // A `drift` SSE event for one new result.
  void PublishDrift(const DriftRecord& r);

  const ReadModel& model() const { return model_; }
  ServingView& serving() { return serving_; }
  std::shared_ptr<http::SseBroadcaster> events() const { return events_; }

 private:
  http::HttpResponse Jobs() const;
  http::HttpResponse JobMetrics(const http::HttpRequest& r);
  http::HttpResponse Alerts() const;
  http::HttpResponse Drift() const;
  http::HttpResponse Deployments();
  Result<prometheus::MetricsSnapshot> Snapshot();

  ReadModel model_;
  ServingView serving_;
  std::mutex store_mu_;
  MetricsStore query_store_;  // GUARDED_BY(store_mu_)
  const alerts::AlertEngine* alerts_;
  std::shared_ptr<http::SseBroadcaster> events_;
  std::function<std::vector<DriftRecord>()> drift_;  // set before serving
};

}  // namespace gantry::monitor
