// IngestBuffer: accepted metrics points and job events waiting to be handed
// to the IngestWriter (ingest_writer.h) as one batch, written in one
// transaction.
//
// Batching trades latency for write throughput: one SQLite transaction per
// message would cap ingest at a few thousand points a second. A batch is due
// when it holds `max_messages` messages or its oldest message is `max_age`
// old (by the injected Clock, so tests advance time instead of sleeping).
// If a write fails the writer keeps the batch for the next try; beyond
// `max_buffered` messages (here and in the writer together) new ones are
// refused (the caller counts them as dropped) so a broken disk cannot
// exhaust memory.
//
// Ownership: holds a reference to the Clock, which must outlive it.
// Thread safety: one thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "monitor/ingest_acks.h"
#include "monitor/metrics_store.h"

namespace gantry::monitor {

// A sequenced point: (its sender, its seq).
using SenderSeq = std::pair<SenderKey, int64_t>;

// What one transaction writes: points, events, and the sequenced points
// among them as (sender, seq), to be acknowledged once committed.
struct IngestBatch {
  std::vector<MetricsPoint> points;
  std::vector<JobEvent> events;
  std::vector<SenderSeq> seqs;
  size_t size() const { return points.size() + events.size(); }
};

struct IngestBufferOptions {
  // Flush after this many messages (default 1000).
  size_t max_messages = 1000;
  // Flush when the oldest message is this old. Default 90 ms, so that with
  // the service's 10 ms tick a point is written within 100 ms.
  std::chrono::milliseconds max_age{90};
  // Hard cap while writes fail.
  size_t max_buffered = 100000;
};

class IngestBuffer {
 public:
  IngestBuffer(const Clock& clock, IngestBufferOptions options = {})
      : clock_(clock), options_(options) {}

  // False when the buffer is full (writes have been failing).
  bool Add(MetricsPoint point);
  bool Add(JobEvent event);

  size_t size() const { return points_.size() + events_.size(); }
  bool empty() const { return size() == 0; }
  // True when a flush should happen now.
  bool Due() const;
  // Everything buffered, as one batch (seqs left empty); empties the buffer.
  IngestBatch Take();

 private:
  void Touch();

  const Clock& clock_;
  IngestBufferOptions options_;
  std::vector<MetricsPoint> points_;
  std::vector<JobEvent> events_;
  std::chrono::steady_clock::time_point oldest_{};  // valid when !empty()
};

}  // namespace gantry::monitor
