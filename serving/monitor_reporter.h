// MonitorReporter: gantry-serve's reports to the monitor's ingest socket
// (docs/serving.md, "Monitoring"; wire: docs/protocol.md, "Monitor ingest").
//
//  * every `interval` (on the injected Clock) one `serving_metrics` frame per
//    served model: its ServingSnapshot (cumulative counters, histograms,
//    input quality, live accuracy) and the reporter's own drop counters;
//  * a sample of the answered requests: ShouldSample() picks a request with
//    probability sample_rate (a seeded hash of a counter: lock-free, the
//    same sequence for the same seed); AddSample() copies its rows (in the
//    profile's feature space) and predicted classes into a pending buffer
//    that each tick turns into `serving_samples` frames of at most
//    max_rows_per_message rows, one model version per frame.
//
// Never blocks or slows the request path: AddSample takes one mutex for a
// copy, and refuses (counting samples_dropped) once max_pending_rows wait.
// Frames wait in a queue of at most max_queued_frames; the sender never
// blocks (ZeroMQ DEALER with ZMQ_IMMEDIATE and dontwait: while the monitor is
// away nothing is accepted), frames it does not take stay queued, and what
// does not fit in the queue is dropped and counted (reports_dropped, and the
// rows of a dropped samples frame in samples_dropped). Reports are
// cumulative, so a dropped one loses resolution, not counts.
//
// Thread safety: ShouldSample/AddSample/stats from any thread; Tick from one
// thread at a time (the reporter's own after Start, or a test's).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/ingest_wire.h"
#include "serving/serving_metrics.h"

namespace zmq {
class context_t;
}

namespace gantry::serving {

// Hands one frame to the transport without blocking; false when it cannot
// take it now (the frame is kept and offered again on the next tick).
class FrameSender {
 public:
  virtual ~FrameSender() = default;
  virtual bool TrySend(const std::string& frame) = 0;
};

// A DEALER connected to the monitor's ingest endpoint (ZMQ_IMMEDIATE: frames
// are refused, not queued, while no monitor is connected; small HWM; linger
// 0 so a stopping server never waits for an absent monitor).
std::unique_ptr<FrameSender> MakeZmqFrameSender(zmq::context_t& ctx, const std::string& endpoint);

// One served model as the reporter sees it.
struct ReportedModel {
  std::string name;
  std::function<std::string()> version;
  std::function<ServingSnapshot()> snapshot;
};

struct ReporterOptions {
  std::string deployment;  // gantry-serve --name
  std::chrono::milliseconds interval{1000};
  double sample_rate = 0.1;         // share of answered requests whose rows are sent (0..1)
  size_t max_pending_rows = 8192;   // sampled rows waiting for a tick, over all models
  size_t max_rows_per_message = 256;
  size_t max_queued_frames = 256;   // frames waiting for the sender
  uint64_t seed = 0;                // sampling hash seed
  const Clock* clock = nullptr;     // not owned; nullptr = the system clock
};

struct ReporterStats {
  uint64_t reports_sent = 0;
  uint64_t reports_dropped = 0;
  uint64_t samples_sent = 0;     // rows
  uint64_t samples_dropped = 0;  // rows
  uint64_t frames_queued = 0;    // waiting now
};

class MonitorReporter {
 public:
  // invalid_argument for a sample_rate outside [0, 1], an empty deployment,
  // a zero interval or zero bounds.
  static Result<std::unique_ptr<MonitorReporter>> Create(ReporterOptions options,
                                                         std::vector<ReportedModel> models,
                                                         std::unique_ptr<FrameSender> sender);
  ~MonitorReporter();
  MonitorReporter(const MonitorReporter&) = delete;
  MonitorReporter& operator=(const MonitorReporter&) = delete;

  // Request path.
  bool ShouldSample();
  void AddSample(const std::string& model, const std::string& version, std::span<const float> rows,
                 size_t row_size, std::span<const int64_t> predictions);

  // When a report is due (interval elapsed on the clock; the first call
  // always reports): queues one serving_metrics frame per model. Always:
  // turns pending samples into frames, then offers the queue to the sender
  // until it refuses one.
  void Tick();
  // A thread that calls Tick() every interval (real time); Stop() joins it
  // after one last Tick().
  void Start();
  void Stop();

  ReporterStats stats() const;

 private:
  MonitorReporter(ReporterOptions options, std::vector<ReportedModel> models, std::unique_ptr<FrameSender> sender);
  struct Pending {
    size_t row_size = 0;
    std::vector<float> inputs;
    std::vector<int64_t> predictions;
  };
  struct Queued {
    std::string frame;
    uint64_t sample_rows = 0;  // 0 for a report
  };
  // REQUIRES: mu_ held.
  void EnqueueLocked(std::string frame, uint64_t sample_rows);
  void DrainLocked();
  ServingMetricsMessage ReportOf(const ReportedModel& m, double now);

  const ReporterOptions options_;
  const std::vector<ReportedModel> models_;
  std::unique_ptr<FrameSender> sender_;
  SystemClock system_clock_;
  const Clock* clock_;
  const uint64_t threshold_;  // ShouldSample: hash < threshold_
  std::atomic<uint64_t> counter_{0};

  mutable std::mutex mu_;
  // (model, version) -> sampled rows waiting for a tick.
  std::map<std::pair<std::string, std::string>, Pending> pending_;  // GUARDED_BY(mu_)
  size_t pending_rows_ = 0;                                         // GUARDED_BY(mu_)
  std::deque<Queued> queue_;                                        // GUARDED_BY(mu_)
  ReporterStats stats_;                                             // GUARDED_BY(mu_)

  // Tick's thread only.
  bool reported_ = false;
  std::chrono::steady_clock::time_point next_report_{};
  int64_t seq_ = 0;

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stop_ = false;  // GUARDED_BY(run_mu_)
  std::thread thread_;
};

}  // namespace gantry::serving
