#include "drift/ecdf.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <string>
#include <utility>

namespace gantry::drift {
namespace {

constexpr int kHashBits = 13;  // 8192 slots: load <= 0.5 at the distinct limit
static_assert((size_t{1} << kHashBits) >= 2 * kHashDistinctLimit);

// Counts distinct values with open addressing; false when there are more than
// kHashDistinctLimit of them (the caller then sorts).
bool HashCount(const double* data, size_t count, size_t stride,
               std::vector<std::pair<double, int64_t>>* out, bool* saw_nan) {
  constexpr size_t kSlots = size_t{1} << kHashBits;
  std::vector<uint64_t> keys(kSlots);
  std::vector<int64_t> counts(kSlots, 0);
  size_t distinct = 0;
  for (size_t i = 0; i < count; ++i) {
    double x = data[i * stride];
    if (std::isnan(x)) {
      *saw_nan = true;
      return false;
    }
    if (x == 0) x = 0.0;  // fold -0.0
    const uint64_t key = std::bit_cast<uint64_t>(x);
    size_t slot = static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> (64 - kHashBits));
    while (counts[slot] != 0 && keys[slot] != key) slot = (slot + 1) & (kSlots - 1);
    if (counts[slot] == 0) {
      if (++distinct > kHashDistinctLimit) return false;
      keys[slot] = key;
    }
    ++counts[slot];
  }
  out->clear();
  out->reserve(distinct);
  for (size_t s = 0; s < kSlots; ++s) {
    if (counts[s] != 0) out->emplace_back(std::bit_cast<double>(keys[s]), counts[s]);
  }
  std::sort(out->begin(), out->end());
  return true;
}

}  // namespace

int64_t Ecdf::CountAtMost(double x) const {
  const auto it = std::upper_bound(values.begin(), values.end(), x);
  return it == values.begin() ? 0 : cumulative[(it - values.begin()) - 1];
}

double Ecdf::Mean() const {
  if (n == 0) return 0;
  double sum = 0;
  for (size_t i = 0; i < values.size(); ++i) sum += values[i] * static_cast<double>(CountAt(i));
  return sum / static_cast<double>(n);
}

double Ecdf::StdDev() const {
  if (n == 0) return 0;
  const double mean = Mean();
  double ss = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const double d = values[i] - mean;
    ss += d * d * static_cast<double>(CountAt(i));
  }
  return std::sqrt(ss / static_cast<double>(n));
}

double Ecdf::Quantile(double q) const {
  if (values.empty()) return 0;
  const double target = q * static_cast<double>(n);
  auto it = std::lower_bound(cumulative.begin(), cumulative.end(), target,
                             [](int64_t c, double t) { return static_cast<double>(c) < t; });
  if (it == cumulative.end()) --it;
  return values[it - cumulative.begin()];
}

Result<Ecdf> MakeEcdf(const double* data, size_t count, size_t stride,
                      std::vector<double>* scratch) {
  Ecdf e;
  e.n = static_cast<int64_t>(count);
  std::vector<std::pair<double, int64_t>> pairs;
  bool saw_nan = false;
  if (HashCount(data, count, stride, &pairs, &saw_nan)) {
    e.values.reserve(pairs.size());
    e.cumulative.reserve(pairs.size());
    int64_t cum = 0;
    for (const auto& [v, c] : pairs) {
      cum += c;
      e.values.push_back(v);
      e.cumulative.push_back(cum);
    }
    return e;
  }
  if (saw_nan) return Status::InvalidArgument("drift: sample contains NaN; drop or impute missing values first");
  std::vector<double> local;
  std::vector<double>& sorted = scratch ? *scratch : local;
  sorted.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const double x = data[i * stride];
    if (std::isnan(x)) return Status::InvalidArgument("drift: sample contains NaN; drop or impute missing values first");
    sorted[i] = x == 0 ? 0.0 : x;
  }
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < count; ++i) {
    if (e.values.empty() || sorted[i] != e.values.back()) {
      e.values.push_back(sorted[i]);
      e.cumulative.push_back(static_cast<int64_t>(i) + 1);
    } else {
      e.cumulative.back() = static_cast<int64_t>(i) + 1;
    }
  }
  return e;
}

Result<Ecdf> EcdfFromCounts(std::vector<double> values, const std::vector<int64_t>& counts) {
  if (values.size() != counts.size()) {
    return Status::InvalidArgument("drift: values and counts differ in length (" +
                                   std::to_string(values.size()) + " vs " +
                                   std::to_string(counts.size()) + ")");
  }
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  Ecdf e;
  for (size_t k = 0; k < order.size(); ++k) {
    const double v = values[order[k]];
    const int64_t c = counts[order[k]];
    if (std::isnan(v)) return Status::InvalidArgument("drift: profile value is NaN");
    if (c <= 0) return Status::InvalidArgument("drift: profile count must be > 0 (got " + std::to_string(c) + ")");
    if (!e.values.empty() && v == e.values.back()) {
      return Status::InvalidArgument("drift: profile values must be distinct");
    }
    e.n += c;
    e.values.push_back(v == 0 ? 0.0 : v);
    e.cumulative.push_back(e.n);
  }
  return e;
}

namespace {

constexpr size_t kBlockColumns = 64;

Status ForEachUint8Column(const MatrixView& m,
                          const std::function<Status(size_t, const Ecdf&)>& fn) {
  const auto* data = static_cast<const uint8_t*>(m.data);
  std::vector<int64_t> hist(kBlockColumns * 256);
  for (size_t c0 = 0; c0 < m.cols; c0 += kBlockColumns) {
    const size_t width = std::min(kBlockColumns, m.cols - c0);
    std::fill(hist.begin(), hist.end(), 0);
    for (size_t r = 0; r < m.rows; ++r) {
      const uint8_t* row = data + r * m.cols + c0;
      for (size_t k = 0; k < width; ++k) ++hist[k * 256 + row[k]];
    }
    for (size_t k = 0; k < width; ++k) {
      Ecdf e;
      e.n = static_cast<int64_t>(m.rows);
      int64_t cum = 0;
      for (int v = 0; v < 256; ++v) {
        const int64_t c = hist[k * 256 + v];
        if (c == 0) continue;
        cum += c;
        e.values.push_back(v);
        e.cumulative.push_back(cum);
      }
      GANTRY_RETURN_IF_ERROR(fn(c0 + k, e));
    }
  }
  return Status::Ok();
}

}  // namespace

Status ForEachColumnEcdf(const MatrixView& m,
                         const std::function<Status(size_t, const Ecdf&)>& fn) {
  if (m.type == ElementType::kUint8) return ForEachUint8Column(m, fn);
  std::vector<double> block, scratch;
  for (size_t c0 = 0; c0 < m.cols; c0 += kBlockColumns) {
    const size_t width = std::min(kBlockColumns, m.cols - c0);
    // Column-major block: block[k * rows + r].
    block.resize(width * m.rows);
    for (size_t r = 0; r < m.rows; ++r) {
      if (m.type == ElementType::kFloat64) {
        const double* row = static_cast<const double*>(m.data) + r * m.cols + c0;
        for (size_t k = 0; k < width; ++k) block[k * m.rows + r] = row[k];
      } else {
        const float* row = static_cast<const float*>(m.data) + r * m.cols + c0;
        for (size_t k = 0; k < width; ++k) block[k * m.rows + r] = row[k];
      }
    }
    for (size_t k = 0; k < width; ++k) {
      auto e = MakeEcdf(block.data() + k * m.rows, m.rows, 1, &scratch);
      if (!e.ok()) return e.status().WithContext("feature " + std::to_string(c0 + k));
      GANTRY_RETURN_IF_ERROR(fn(c0 + k, *e));
    }
  }
  return Status::Ok();
}

}  // namespace gantry::drift
