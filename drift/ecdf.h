// Ecdf: a sample reduced to its sorted distinct values and cumulative counts,
// the form every per-feature statistic here works on. Equal values collapse
// into one step, so heavily tied data (image pixels, small integer codes)
// costs O(distinct values) in the statistics after one O(n) counting pass.
//
// Building: a hash count is tried first (O(n), used while the sample has at
// most kHashDistinctLimit distinct values); past that the values are copied,
// sorted once (O(n log n)) and run-length collapsed. -0.0 counts as 0.0, as
// in numpy's sort and searchsorted. NaN is refused.
//
// Value type, no shared state: safe to use from several threads once built.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/status.h"
#include "drift/matrix.h"

namespace gantry::drift {

struct Ecdf {
  std::vector<double> values;       // strictly increasing
  std::vector<int64_t> cumulative;  // observations <= values[i]; last == n
  int64_t n = 0;                    // observations in the sample (weights)

  size_t distinct() const { return values.size(); }
  int64_t CountAt(size_t i) const { return cumulative[i] - (i ? cumulative[i - 1] : 0); }
  // Observations <= x (numpy searchsorted side='right').
  int64_t CountAtMost(double x) const;
  double Mean() const;
  // Population standard deviation (ddof = 0).
  double StdDev() const;
  // Smallest value v with F(v) >= q, q in (0, 1] (the inverse ECDF).
  double Quantile(double q) const;
};

// Walks the distinct values of `a` and `b` merged in increasing order and
// calls fn(v, count_a, count_b) with each sample's observations <= v: the
// one pass behind the KS statistic and the Wasserstein distance.
template <typename Fn>
void WalkMerged(const Ecdf& a, const Ecdf& b, Fn&& fn) {
  size_t i = 0, j = 0;
  int64_t ca = 0, cb = 0;
  while (i < a.values.size() || j < b.values.size()) {
    const double v = (j == b.values.size() || (i < a.values.size() && a.values[i] <= b.values[j]))
                         ? a.values[i]
                         : b.values[j];
    if (i < a.values.size() && a.values[i] == v) ca = a.cumulative[i++];
    if (j < b.values.size() && b.values[j] == v) cb = b.cumulative[j++];
    fn(v, ca, cb);
  }
}

// Distinct values up to which the O(n) hash count is used.
inline constexpr size_t kHashDistinctLimit = 4096;

// Builds from `count` values at data[0], data[stride], ...; `scratch` is
// reused between calls to avoid allocations (may be null).
Result<Ecdf> MakeEcdf(const double* data, size_t count, size_t stride = 1,
                      std::vector<double>* scratch = nullptr);
inline Result<Ecdf> MakeEcdf(std::span<const double> xs) {
  return MakeEcdf(xs.data(), xs.size(), 1, nullptr);
}
// From distinct values with their counts (any order; counts > 0). Used to
// restore a stored profile. Refuses duplicates, NaN and non-positive counts.
Result<Ecdf> EcdfFromCounts(std::vector<double> values, const std::vector<int64_t>& counts);

// Calls fn(column, ecdf) for every column of m, in order, stopping at the
// first error. Columns are gathered in blocks that fit in cache (one pass
// over the rows per block); uint8 data is counted straight into 256-bin
// histograms, never widened or sorted. Memory: one block of columns.
Status ForEachColumnEcdf(const MatrixView& m,
                         const std::function<Status(size_t column, const Ecdf& ecdf)>& fn);

}  // namespace gantry::drift
