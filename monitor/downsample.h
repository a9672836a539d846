// Server-side downsampling of one metric series for /api/jobs/{id}/metrics.
//
// Min/max buckets: the first and the last point are always kept; the points
// between them are cut into equal-count buckets, and each bucket keeps its
// smallest and its largest value (in step order), so spikes and dips survive.
// A NaN value counts as the bucket's largest, so a divergence stays visible.
// The result holds at most max_points points (max_points >= 1) and is a
// subsequence of the input.
//
// Thread safety: pure function.
#pragma once

#include <cstdint>
#include <vector>

namespace gantry::monitor {

struct SeriesPoint {
  int64_t step = 0;
  double time = 0;
  double value = 0;
};

std::vector<SeriesPoint> Downsample(const std::vector<SeriesPoint>& in, int64_t max_points);

}  // namespace gantry::monitor
