#include "monitor/ingest_buffer.h"

namespace gantry::monitor {

void IngestBuffer::Touch() {
  if (empty()) oldest_ = clock_.Now();
}

bool IngestBuffer::Add(MetricsPoint point) {
  if (size() >= options_.max_buffered) return false;
  Touch();
  points_.push_back(std::move(point));
  return true;
}

bool IngestBuffer::Add(JobEvent event) {
  if (size() >= options_.max_buffered) return false;
  Touch();
  events_.push_back(std::move(event));
  return true;
}

bool IngestBuffer::Due() const {
  if (empty()) return false;
  return size() >= options_.max_messages || clock_.Now() - oldest_ >= options_.max_age;
}

IngestBatch IngestBuffer::Take() {
  IngestBatch b;
  b.points.swap(points_);
  b.events.swap(events_);
  // The next batch is about as big: keep the vectors from reallocating.
  points_.reserve(b.points.size());
  return b;
}

}  // namespace gantry::monitor
