#include "monitor/downsample.h"

#include <cmath>

namespace gantry::monitor {
namespace {

// True when a is "larger" than b for the max pick (NaN beats everything).
bool Larger(double a, double b) {
  if (std::isnan(b)) return false;
  if (std::isnan(a)) return true;
  return a > b;
}

bool Smaller(double a, double b) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return a < b;
}

}  // namespace

std::vector<SeriesPoint> Downsample(const std::vector<SeriesPoint>& in, int64_t max_points) {
  const size_t n = in.size();
  if (max_points < 1) max_points = 1;
  if (n <= static_cast<size_t>(max_points)) return in;
  if (max_points == 1) return {in.back()};
  std::vector<SeriesPoint> out;
  out.reserve(static_cast<size_t>(max_points));
  out.push_back(in.front());
  const size_t buckets = static_cast<size_t>(max_points - 2) / 2;
  const size_t interior = n - 2;  // indices 1 .. n-2
  for (size_t b = 0; b < buckets; ++b) {
    size_t lo = 1 + b * interior / buckets;
    size_t hi = 1 + (b + 1) * interior / buckets;  // exclusive
    if (lo >= hi) continue;
    size_t mn = lo, mx = lo;
    for (size_t i = lo + 1; i < hi; ++i) {
      if (Smaller(in[i].value, in[mn].value)) mn = i;
      if (Larger(in[i].value, in[mx].value)) mx = i;
    }
    if (mn == mx) {
      out.push_back(in[mn]);
    } else {
      out.push_back(in[std::min(mn, mx)]);
      out.push_back(in[std::max(mn, mx)]);
    }
  }
  out.push_back(in.back());
  return out;
}

}  // namespace gantry::monitor
