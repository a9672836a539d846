// DeployedModel: one model of a gantry-serve process — its hot-reload slot,
// dynamic batcher and metrics — and the KServe v2 handlers for it.
//
// Request path (docs/serving.md, "Design"): decode and validate the body
// against the current metadata (codec) → FP32 rows → Batcher::Submit (503
// when the queue is full) → the batch runs on the slot's current model →
// the response names the version that computed it. Every response of a
// model route, errors included, carries the version: in the body
// ("model_version") and in the X-Model-Version header.
//
// Every version installed must take rows of options.row_size values (a new
// version with another input shape needs a new deployment).
// Install() puts a loaded and warmed version in the slot (the swap of
// hot reload); batches in flight finish on the previous one.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/http/message.h"
#include "serving/batcher.h"
#include "serving/infer_codec.h"
#include "serving/model_slot.h"
#include "serving/monitor_reporter.h"
#include "serving/serving_metrics.h"

namespace gantry::serving {

struct DeploymentOptions {
  std::string name;        // the model's name in URLs (/v2/models/{name})
  std::string registry_model;  // the registry model it follows
  std::string ref;         // the alias or version it follows ("production", "v3")
  bool int8 = false;
  size_t row_size = 1;     // FP32 values per input row (the model's input shape)
  size_t max_batch = 64;
  std::chrono::milliseconds max_delay{0};
  CodecLimits limits;      // max_rows is set to max_batch
  // With max_delay 0, an HTTP loop thread runs the batches of the requests
  // it read itself, after reading the others that arrived with them
  // (Batcher's run_on_submitting_loop, http::DeferOnCurrentLoop): no hand-off
  // to the batcher's worker and back. Off: every batch runs on the worker.
  bool run_on_http_loop = true;
  // A request whose batch ran after this long is answered 504.
  std::chrono::milliseconds request_timeout{30'000};
};

class DeployedModel {
 public:
  DeployedModel(DeploymentOptions options, ServingMetricsOptions metrics);
  ~DeployedModel();

  // Makes `model` (loaded and warmed) the one new batches use; returns the
  // version it replaced ("" for the first). `reference` (may be null): the
  // version's preprocessing and profile range, for the input-quality range
  // check and the samples sent to the monitor.
  std::string Install(std::shared_ptr<const Servable> model, ModelMetadata metadata,
                      std::shared_ptr<const InputReference> reference = nullptr);
  // Samples of answered requests go to `reporter` (not owned; must outlive
  // this model). Call before serving.
  void SetReporter(MonitorReporter* reporter) { reporter_ = reporter; }
  bool ready() const;
  std::string version() const;  // "" before the first Install
  uint64_t swaps() const { return slot_.generation(); }
  const DeploymentOptions& options() const { return options_; }

  http::HttpResponse Metadata() const;
  http::HttpResponse Ready() const;
  // Answers through `done`, exactly once: before returning when the request
  // is refused, else later on the thread that ran its batch (this HTTP
  // loop's, after the handler returned, or the batcher's worker). Never
  // blocks for the batch.
  void InferAsync(const http::HttpRequest& request, std::function<void(http::HttpResponse)> done);
  // The same, blocking until answered (tests, the in-process bench).
  http::HttpResponse Infer(const http::HttpRequest& request);
  http::HttpResponse Feedback(const http::HttpRequest& request);
  ServingSnapshot Snapshot() const { return metrics_->Snapshot(); }
  Batcher::Stats batcher_stats() const { return batcher_->stats(); }

  // Runs what is queued, then refuses new requests (503).
  void Drain();

 private:
  struct InferCall;
  // The response for a request whose batch ran (or failed).
  http::HttpResponse Finish(InferCall& call, Result<RowsResult> result);
  http::HttpResponse Error(const ApiError& error, std::chrono::steady_clock::time_point start,
                           const std::string& version);
  ModelMetadata metadata() const;
  std::shared_ptr<const InputReference> reference() const;

  DeploymentOptions options_;
  std::unique_ptr<ServingMetrics> metrics_;
  ModelSlot<Servable> slot_;
  // The current metadata, shared (Install replaces it whole).
  std::shared_ptr<const ModelMetadata> SharedMetadata() const;

  mutable std::mutex mu_;
  // Replaced whole on Install, never changed in place.
  std::shared_ptr<const ModelMetadata> metadata_ = std::make_shared<const ModelMetadata>();  // GUARDED_BY(mu_)
  std::shared_ptr<const InputReference> reference_;  // GUARDED_BY(mu_)
  MonitorReporter* reporter_ = nullptr;
  std::atomic<uint64_t> next_id_{1};
  std::unique_ptr<Batcher> batcher_;  // last: its worker uses the members above
};

}  // namespace gantry::serving
