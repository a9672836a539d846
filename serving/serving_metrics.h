// Serving metrics: request count, latency and batch-size histograms, errors by
// HTTP status and by kind, input-quality counters, and live accuracy from
// feedback (FeedbackTracker). Snapshot() returns plain data that the monitor
// renders (/metrics, the page); nothing here knows a wire format.
//
// Input quality: decode failures are counted by kind (NaN/Inf, wrong shape,
// wrong datatype) through RecordError; values outside the reference profile's
// per-feature [min, max] (from the training data's profile) are counted by
// CheckRange on accepted rows — per value, per request with any, and per
// feature (the features most often out of range point at drift).
//
// Thread safety: every method may be called from any thread (one mutex, held
// for counter updates only; the feedback tracker has its own).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "serving/api_error.h"
#include "serving/feedback_tracker.h"
#include "serving/histogram.h"

namespace gantry::serving {

// Per-feature reference range of the inputs, one entry per element of a row.
struct InputProfile {
  std::vector<float> min;
  std::vector<float> max;
};

// What one served version's training data looked like (from its stored drift
// profile, drift/stored_profile.h): the input-quality range checks and the
// samples sent to the monitor use the profile's feature space.
struct InputReference {
  // The version's preprocessing, (x / 255 - mean) / std for IDX images
  // (clients send raw pixels; the profile holds preprocessed features).
  std::optional<std::pair<double, double>> normalize;  // mean, std
  InputProfile range;  // per-feature [min, max]; empty = no range checks
  // Raw request rows -> the profile's space (a copy when no preprocessing).
  std::vector<float> Transform(std::span<const float> raw) const;
};

struct InputQualitySnapshot {
  uint64_t non_finite = 0;      // requests refused for NaN/Inf
  uint64_t wrong_shape = 0;     // requests refused for their shape
  uint64_t wrong_datatype = 0;  // requests refused for their datatype
  uint64_t out_of_range_values = 0;
  uint64_t out_of_range_requests = 0;  // requests with at least one such value
  // feature index → values out of range, the kMaxFeaturesReported worst.
  std::map<size_t, uint64_t> out_of_range_by_feature;
};

struct ServingSnapshot {
  uint64_t requests = 0;  // answered, ok or not
  uint64_t succeeded = 0;
  std::map<int, uint64_t> errors_by_status;          // 400 → n
  std::map<std::string, uint64_t> errors_by_kind;    // "wrong_shape" → n
  HistogramSnapshot latency_seconds;                 // answered requests
  HistogramSnapshot batch_size;                      // rows per batch
  InputQualitySnapshot input_quality;
  FeedbackSnapshot feedback;
};

struct ServingMetricsOptions {
  std::vector<double> latency_bounds = Histogram::LatencyBounds();
  size_t max_batch = 64;      // sets the batch-size buckets
  InputProfile profile;       // empty = no range checks
  FeedbackOptions feedback;
};

inline constexpr size_t kMaxFeaturesReported = 32;

class ServingMetrics {
 public:
  // invalid_argument when the profile's min and max differ in length or a
  // min exceeds its max.
  static Result<std::unique_ptr<ServingMetrics>> Create(ServingMetricsOptions options);
  explicit ServingMetrics(ServingMetricsOptions options);  // profile unchecked

  void RecordSuccess(double latency_seconds);
  // Counts the error by status and kind (and the input-quality counters).
  void RecordError(const ApiError& error, double latency_seconds);
  void RecordBatch(size_t rows);
  // Range check of accepted rows against the profile (no-op without one, or
  // when row_size differs from the profile's length).
  void CheckRange(const std::vector<float>& rows, size_t row_size);
  // The same against `profile` (the served version's, InputReference::range);
  // the per-feature counts are kept only for the options' profile.
  void CheckRange(std::span<const float> rows, size_t row_size, const InputProfile& profile);

  FeedbackTracker& feedback() { return feedback_; }
  ServingSnapshot Snapshot() const;

 private:
  const ServingMetricsOptions options_;
  FeedbackTracker feedback_;
  mutable std::mutex mu_;
  ServingSnapshot counts_;          // GUARDED_BY(mu_); histograms below
  Histogram latency_;               // GUARDED_BY(mu_)
  Histogram batch_size_;            // GUARDED_BY(mu_)
  std::vector<uint64_t> by_feature_;  // GUARDED_BY(mu_)
};

}  // namespace gantry::serving
