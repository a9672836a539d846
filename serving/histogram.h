// A fixed-bucket histogram (Prometheus style: upper bounds, cumulative on
// render) and its snapshot.
//
// Thread safety: Histogram is not locked; its owner (ServingMetrics) is.
// HistogramSnapshot is plain data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gantry::serving {

struct HistogramSnapshot {
  std::vector<double> bounds;    // ascending upper bounds
  std::vector<uint64_t> counts;  // per bucket, bounds.size() + 1 (last: above every bound)
  uint64_t count = 0;
  double sum = 0;

  // Upper bound of the bucket holding quantile q (0..1); the largest bound
  // for the overflow bucket; 0 when empty. Coarse by design.
  double Quantile(double q) const;
};

class Histogram {
 public:
  // `bounds` ascending; an empty list is one bucket.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  HistogramSnapshot Snapshot() const;

  // 50 µs .. 10 s, roughly ×2 apart, in seconds.
  static std::vector<double> LatencyBounds();
  // 1, 2, 4, ... up to and including max_batch.
  static std::vector<double> BatchSizeBounds(size_t max_batch);

 private:
  HistogramSnapshot s_;
};

}  // namespace gantry::serving
