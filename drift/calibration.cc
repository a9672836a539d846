#include "drift/calibration.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace gantry::drift {
namespace {

// Shares of drifted features over `count` windows drawn with `rng`.
Result<std::vector<double>> NullShares(const DriftDetector& detector, const MatrixView& reference,
                                       int64_t window_rows, int count, std::mt19937_64& rng,
                                       const DriftOptions& drift) {
  std::vector<size_t> rows(reference.rows);
  std::vector<double> shares;
  for (int w = 0; w < count; ++w) {
    std::iota(rows.begin(), rows.end(), size_t{0});
    // Partial Fisher–Yates: the first window_rows entries are the sample.
    for (int64_t i = 0; i < window_rows; ++i) {
      std::uniform_int_distribution<size_t> pick(static_cast<size_t>(i), rows.size() - 1);
      std::swap(rows[i], rows[pick(rng)]);
    }
    const Matrix window =
        Matrix::SelectRows(reference, std::span<const size_t>(rows.data(), window_rows));
    GANTRY_ASSIGN_OR_RETURN(DatasetDrift d, detector.Compare(window.view(), {}, drift));
    shares.push_back(d.share);
  }
  return shares;
}

}  // namespace

Result<CalibrationInfo> CalibrateShareThreshold(const DriftDetector& detector,
                                                const MatrixView& reference,
                                                const CalibrationOptions& options,
                                                DriftOptions drift) {
  if (options.window_rows < 1 || static_cast<size_t>(options.window_rows) > reference.rows) {
    return Status::InvalidArgument("drift calibration: window_rows must be in [1, " +
                                   std::to_string(reference.rows) + "] (got " +
                                   std::to_string(options.window_rows) + ")");
  }
  if (options.windows < 1 || options.check_windows < 0 ||
      !(options.target_false_alarm >= 0 && options.target_false_alarm < 1)) {
    return Status::InvalidArgument(
        "drift calibration: need windows >= 1, check_windows >= 0, target_false_alarm in [0, 1)");
  }
  drift.use_calibration = false;
  std::mt19937_64 rng(options.seed);
  GANTRY_ASSIGN_OR_RETURN(std::vector<double> shares,
                          NullShares(detector, reference, options.window_rows, options.windows,
                                     rng, drift));
  std::sort(shares.begin(), shares.end(), std::greater<>());
  const size_t allowed = static_cast<size_t>(options.target_false_alarm * options.windows);
  const double features = static_cast<double>(std::max<size_t>(1, reference.cols));
  // Just above the (allowed+1)-th largest null share: half a feature's step.
  double threshold = allowed < shares.size() ? shares[allowed] + 0.5 / features : 0.0;
  threshold = std::max(threshold, options.min_share);

  CalibrationInfo info;
  info.share_threshold = threshold;
  info.window_rows = options.window_rows;
  info.windows = options.windows;
  info.max_null_share = shares.front();
  info.seed = options.seed;
  info.check_windows = options.check_windows;
  if (options.check_windows > 0) {
    std::mt19937_64 check_rng(options.seed + 1);
    GANTRY_ASSIGN_OR_RETURN(std::vector<double> check,
                            NullShares(detector, reference, options.window_rows,
                                       options.check_windows, check_rng, drift));
    for (double s : check) info.check_alarms += (s > 0 && s >= threshold);
    info.false_alarm_rate = static_cast<double>(info.check_alarms) / options.check_windows;
  }
  return info;
}

}  // namespace gantry::drift
