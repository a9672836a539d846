// MetricsPublisher: delivers training metrics to the monitor's ingest
// socket at least once.
//
// One ZeroMQ DEALER socket connected to the monitor's ingest ROUTER. Each
// point is one `metrics` frame built by common/ingest_wire.h
// (EncodeMetricsMessage) carrying the next sequence number of this
// (job, attempt, rank). The point also stays in a bounded MetricsSpool
// (metrics_spool.h; memory, then a spill file in the attempt's folder) until
// the monitor's `ingest_ack` frame, arriving on the same socket, says it is
// committed. When acks stop advancing for `resend_after` while points are
// outstanding (the monitor died and lost what it had not yet written, then
// came back on the same endpoint), everything unacknowledged is sent again
// in sequence order; the monitor drops the repeats.
//
// Publishing never blocks training: sends and ack reads are non-blocking
// and bounded per call (max_sends_per_call). When the spool is full the new
// point is dropped, counted and logged. Close() (and the destructor) waits
// at most `close_timeout` for the last acks, resending as needed, then
// warns about anything never acknowledged. A peer that has never sent an
// ack (a plain test socket, a monitor that does not ack) gets neither
// resends nor the close wait: only the socket's linger, as before.
// An empty endpoint makes a disabled publisher (tests, benchmarks).
//
// Thread safety: one thread. The zmq context and the clock must outlive the
// publisher.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/protocol.h"
#include "worker/metrics_spool.h"

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

struct MetricsPublisherOptions {
  // spool.spill_path empty: SpillPath(spill_dir, rank) when spill_dir is set.
  MetricsSpoolOptions spool;
  // The attempt's folder (the worker's --log-dir); empty = no spill file.
  std::string spill_dir;
  // No ack progress for this long with points outstanding: send them again.
  std::chrono::milliseconds resend_after{2000};
  // Frames handed to ZeroMQ per Publish() at most (bounds its time).
  size_t max_sends_per_call = 1000;
  // How long Close() waits for the last acks.
  std::chrono::milliseconds close_timeout{10000};
};

class MetricsPublisher {
 public:
  // Time the socket may keep undelivered frames after close.
  static constexpr std::chrono::milliseconds kLinger{2000};
  // Frames ZeroMQ queues towards the monitor; the spool keeps the rest.
  static constexpr int kSendHighWaterMark = 10000;

  MetricsPublisher(zmq::context_t& ctx, const std::string& endpoint, MetricsSource source,
                   MetricsPublisherOptions options = {}, const Clock* clock = nullptr);
  ~MetricsPublisher();
  MetricsPublisher(const MetricsPublisher&) = delete;
  MetricsPublisher& operator=(const MetricsPublisher&) = delete;

  // <dir>/metrics-spool-rank-<rank>.bin
  static std::string SpillPath(const std::string& dir, int rank);

  bool enabled() const { return socket_ != nullptr; }
  // Spools one point and sends what is due; returns false when the point
  // was dropped (spool full, or the publisher is disabled).
  bool Publish(const MetricsPoint& point);
  // Reads acks and (re)sends what is due without a new point.
  void Pump();
  // Waits up to close_timeout for every point to be acknowledged (not at
  // all when the peer never acked); returns the number still
  // unacknowledged. Idempotent; after it Publish() refuses.
  int64_t Close();

  int64_t sent() const { return sent_; }        // frames handed to ZeroMQ, resends included
  int64_t dropped() const { return dropped_; }  // points refused by a full spool
  int64_t resent() const { return resent_; }    // frames sent again
  int64_t acked() const { return spool_.acked(); }
  size_t unacknowledged() const { return spool_.size(); }
  // The frame Publish() sends, for tests and for other transports.
  static std::string Encode(const MetricsSource& source, const MetricsPoint& point, int64_t seq = 0);

 private:
  void ReadAcks();
  void SendDue();

  MetricsSource source_;
  MetricsPublisherOptions options_;
  SystemClock system_clock_;
  const Clock& clock_;
  MetricsSpool spool_;
  std::unique_ptr<zmq::socket_t> socket_;
  bool ack_seen_ = false;  // the peer acknowledges: resends and the close wait apply
  bool closed_ = false;
  bool warned_full_ = false;
  std::chrono::steady_clock::time_point last_progress_{};
  int64_t sent_ = 0;
  int64_t dropped_ = 0;
  int64_t resent_ = 0;
  int64_t high_sent_ = 0;  // highest seq ever sent: lower ones are resends
};

}  // namespace gantry::worker
