#include "serving/histogram.h"

#include <algorithm>
#include <utility>

namespace gantry::serving {

double HistogramSnapshot::Quantile(double q) const {
  if (count == 0) return 0;
  const double target = q * static_cast<double>(count);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (static_cast<double>(seen) >= target && counts[i] > 0) {
      return i < bounds.size() ? bounds[i] : (bounds.empty() ? 0 : bounds.back());
    }
  }
  return bounds.empty() ? 0 : bounds.back();
}

Histogram::Histogram(std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  s_.bounds = std::move(bounds);
  s_.counts.assign(s_.bounds.size() + 1, 0);
}

void Histogram::Observe(double value) {
  const auto it = std::lower_bound(s_.bounds.begin(), s_.bounds.end(), value);
  ++s_.counts[static_cast<size_t>(it - s_.bounds.begin())];
  ++s_.count;
  s_.sum += value;
}

HistogramSnapshot Histogram::Snapshot() const { return s_; }

std::vector<double> Histogram::LatencyBounds() {
  return {50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
          25e-3, 50e-3,  100e-3, 250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0};
}

std::vector<double> Histogram::BatchSizeBounds(size_t max_batch) {
  std::vector<double> b;
  for (size_t v = 1; v < max_batch; v *= 2) b.push_back(static_cast<double>(v));
  b.push_back(static_cast<double>(std::max<size_t>(max_batch, 1)));
  return b;
}

}  // namespace gantry::serving
