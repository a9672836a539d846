#include "serving/serving_metrics.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

namespace gantry::serving {

Result<std::unique_ptr<ServingMetrics>> ServingMetrics::Create(ServingMetricsOptions options) {
  const InputProfile& p = options.profile;
  if (p.min.size() != p.max.size()) {
    return Status::InvalidArgument("input profile: " + std::to_string(p.min.size()) +
                                   " minima but " + std::to_string(p.max.size()) + " maxima");
  }
  for (size_t i = 0; i < p.min.size(); ++i) {
    if (!(p.min[i] <= p.max[i])) {
      return Status::InvalidArgument("input profile: feature " + std::to_string(i) + " has min " +
                                     std::to_string(p.min[i]) + " > max " +
                                     std::to_string(p.max[i]));
    }
  }
  return std::make_unique<ServingMetrics>(std::move(options));
}

ServingMetrics::ServingMetrics(ServingMetricsOptions options)
    : options_(std::move(options)),
      feedback_(options_.feedback),
      latency_(options_.latency_bounds),
      batch_size_(Histogram::BatchSizeBounds(options_.max_batch)),
      by_feature_(options_.profile.min.size(), 0) {}

void ServingMetrics::RecordSuccess(double latency_seconds) {
  std::lock_guard<std::mutex> l(mu_);
  ++counts_.requests;
  ++counts_.succeeded;
  latency_.Observe(latency_seconds);
}

void ServingMetrics::RecordError(const ApiError& error, double latency_seconds) {
  std::lock_guard<std::mutex> l(mu_);
  ++counts_.requests;
  ++counts_.errors_by_status[error.http_status];
  ++counts_.errors_by_kind[std::string(ErrorKindName(error.kind))];
  latency_.Observe(latency_seconds);
  switch (error.kind) {
    case ErrorKind::kNonFinite: ++counts_.input_quality.non_finite; break;
    case ErrorKind::kWrongShape: ++counts_.input_quality.wrong_shape; break;
    case ErrorKind::kWrongDatatype: ++counts_.input_quality.wrong_datatype; break;
    default: break;
  }
}

void ServingMetrics::RecordBatch(size_t rows) {
  std::lock_guard<std::mutex> l(mu_);
  batch_size_.Observe(static_cast<double>(rows));
}

void ServingMetrics::CheckRange(const std::vector<float>& rows, size_t row_size) {
  const InputProfile& p = options_.profile;
  if (p.min.empty() || row_size != p.min.size()) return;
  // Count outside the lock; rows can be large.
  uint64_t total = 0;
  std::vector<uint64_t> local(row_size, 0);
  for (size_t i = 0; i < rows.size(); ++i) {
    const size_t f = i % row_size;
    const float v = rows[i];
    if (v < p.min[f] || v > p.max[f] || std::isnan(v)) {
      ++local[f];
      ++total;
    }
  }
  if (total == 0) return;
  std::lock_guard<std::mutex> l(mu_);
  counts_.input_quality.out_of_range_values += total;
  ++counts_.input_quality.out_of_range_requests;
  for (size_t f = 0; f < row_size; ++f) by_feature_[f] += local[f];
}

void ServingMetrics::CheckRange(std::span<const float> rows, size_t row_size, const InputProfile& p) {
  if (p.min.empty() || row_size != p.min.size() || p.max.size() != p.min.size()) return;
  uint64_t total = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const size_t f = i % row_size;
    const float v = rows[i];
    if (v < p.min[f] || v > p.max[f] || std::isnan(v)) ++total;
  }
  if (total == 0) return;
  std::lock_guard<std::mutex> l(mu_);
  counts_.input_quality.out_of_range_values += total;
  ++counts_.input_quality.out_of_range_requests;
}

std::vector<float> InputReference::Transform(std::span<const float> raw) const {
  std::vector<float> out(raw.begin(), raw.end());
  if (!normalize) return out;
  const float mean = static_cast<float>(normalize->first), sd = static_cast<float>(normalize->second);
  for (float& v : out) v = (v / 255.0f - mean) / sd;
  return out;
}

ServingSnapshot ServingMetrics::Snapshot() const {
  ServingSnapshot s;
  {
    std::lock_guard<std::mutex> l(mu_);
    s = counts_;
    s.latency_seconds = latency_.Snapshot();
    s.batch_size = batch_size_.Snapshot();
    std::vector<std::pair<uint64_t, size_t>> worst;
    for (size_t f = 0; f < by_feature_.size(); ++f)
      if (by_feature_[f] > 0) worst.emplace_back(by_feature_[f], f);
    const size_t keep = std::min(worst.size(), kMaxFeaturesReported);
    std::partial_sort(worst.begin(), worst.begin() + static_cast<std::ptrdiff_t>(keep),
                      worst.end(), [](const auto& a, const auto& b) {
                        return a.first != b.first ? a.first > b.first : a.second < b.second;
                      });
    for (size_t i = 0; i < keep; ++i) s.input_quality.out_of_range_by_feature[worst[i].second] =
        worst[i].first;
  }
  s.feedback = feedback_.Snapshot();
  return s;
}

}  // namespace gantry::serving
