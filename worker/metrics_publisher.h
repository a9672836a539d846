// MetricsPublisher: pushes training metrics to the monitor's ingest socket.
//
// One ZeroMQ PUSH socket connected to the monitor. Each point is one
// `metrics` frame built by common/ingest_wire.h (EncodeMetricsMessage).
// Publishing never blocks training: sends are non-blocking, and a point that
// does not fit under the send high-water mark (monitor down or slow) is
// dropped and counted. On destruction the socket lingers up to kLinger so the
// last points (the final step, the final evaluation) still get out.
// An empty endpoint makes a disabled publisher (tests, benchmarks, ranks > 0).
//
// Thread safety: one thread. The zmq context must outlive the publisher.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "common/protocol.h"

namespace gantry::worker {

// Who is reporting; the same for every point of one rank.
struct MetricsSource {
  std::string job_id;
  int attempt = 1;
  int rank = 0;
  int world_size = 1;
};

struct MetricsPoint {
  int64_t step = 0;  // optimizer steps done (1-based after the first step)
  int64_t total_steps = 0;
  int64_t epoch = 0;
  double time = 0;   // unix seconds
  json values = json::object();
};

class MetricsPublisher {
 public:
  // Time the socket may keep undelivered points after close. Longer keeps
  // more of the tail when the monitor is slow, but delays the worker's exit.
  static constexpr std::chrono::milliseconds kLinger{2000};
  // Points queued before new ones are dropped (~ minutes of metrics at the
  // default log interval; bounded so a dead monitor costs bounded memory).
  static constexpr int kSendHighWaterMark = 10000;

  MetricsPublisher(zmq::context_t& ctx, const std::string& endpoint, MetricsSource source);
  ~MetricsPublisher();
  MetricsPublisher(const MetricsPublisher&) = delete;
  MetricsPublisher& operator=(const MetricsPublisher&) = delete;

  bool enabled() const { return socket_ != nullptr; }
  // Queues one point; returns false when it was dropped.
  bool Publish(const MetricsPoint& point);
  int64_t sent() const { return sent_; }
  int64_t dropped() const { return dropped_; }
  // The frame Publish() sends, for tests and for other transports.
  static std::string Encode(const MetricsSource& source, const MetricsPoint& point);

 private:
  MetricsSource source_;
  std::unique_ptr<zmq::socket_t> socket_;
  int64_t sent_ = 0;
  int64_t dropped_ = 0;
};

}  // namespace gantry::worker
