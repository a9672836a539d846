#include "drift/profile.h"

#include <string>
#include <utility>

#include "drift/statistics.h"

namespace gantry::drift {

FeatureProfile ProfileFeature(const Ecdf& exact, std::string name, const ProfileOptions& options) {
  FeatureProfile f;
  f.name = std::move(name);
  f.count = exact.n;
  f.mean = exact.Mean();
  f.std_dev = exact.StdDev();
  f.bin_edges = ReferenceBinEdges(exact, options.bins);
  f.bin_counts = BinCounts(exact, f.bin_edges);
  const int64_t k = options.max_points;
  if (static_cast<int64_t>(exact.distinct()) <= k) {
    f.exact = true;
    f.values = exact.values;
    f.counts.reserve(exact.distinct());
    for (size_t i = 0; i < exact.distinct(); ++i) f.counts.push_back(exact.CountAt(i));
    return f;
  }
  // Sketch: point i is the order statistic of rank ceil((i+1) n / k) and
  // carries the ranks (floor(i n / k), floor((i+1) n / k)].
  f.exact = false;
  const int64_t n = exact.n;
  size_t pos = 0;
  for (int64_t i = 0; i < k; ++i) {
    const int64_t lo = i * n / k, hi = (i + 1) * n / k;
    if (hi == lo) continue;
    while (exact.cumulative[pos] < hi) ++pos;  // first value whose rank reaches hi
    const double v = exact.values[pos];
    if (!f.values.empty() && f.values.back() == v) {
      f.counts.back() += hi - lo;
    } else {
      f.values.push_back(v);
      f.counts.push_back(hi - lo);
    }
  }
  return f;
}

Result<Ecdf> ProfileEcdf(const FeatureProfile& feature) {
  return EcdfFromCounts(feature.values, feature.counts);
}

Result<ReferenceProfile> BuildProfile(const MatrixView& numeric, std::span<const std::string> names,
                                      std::span<const CategoricalColumn> categorical,
                                      const ProfileOptions& options) {
  if (options.max_points < 2 || options.bins < 1) {
    return Status::InvalidArgument("drift profile: max_points must be >= 2 and bins >= 1 (got " +
                                   std::to_string(options.max_points) + ", " +
                                   std::to_string(options.bins) + ")");
  }
  if (!names.empty() && names.size() != numeric.cols) {
    return Status::InvalidArgument("drift profile: " + std::to_string(names.size()) +
                                   " names for " + std::to_string(numeric.cols) + " features");
  }
  const size_t rows = numeric.cols > 0 ? numeric.rows
                      : categorical.empty() ? 0 : categorical.front().codes.size();
  if (rows == 0) return Status::InvalidArgument("drift profile: the reference has no rows");
  ReferenceProfile p;
  p.rows = static_cast<int64_t>(rows);
  p.options = options;
  p.features.reserve(numeric.cols);
  GANTRY_RETURN_IF_ERROR(ForEachColumnEcdf(numeric, [&](size_t c, const Ecdf& e) {
    p.features.push_back(
        ProfileFeature(e, names.empty() ? "f" + std::to_string(c) : names[c], options));
    return Status::Ok();
  }));
  for (const CategoricalColumn& col : categorical) {
    if (col.codes.size() != rows) {
      return Status::InvalidArgument("drift profile: categorical '" + col.name + "' has " +
                                     std::to_string(col.codes.size()) + " rows, expected " +
                                     std::to_string(rows));
    }
    CategoricalProfile cp;
    cp.name = col.name;
    for (int64_t code : col.codes) ++cp.counts[code];
    p.categorical.push_back(std::move(cp));
  }
  return p;
}

}  // namespace gantry::drift
