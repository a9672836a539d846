// ReferenceProfile: what drift detection keeps of the reference (training)
// data, bounded in size, so new data can be compared without the raw rows.
// It is what gets stored with each checkpoint version.
//
// Per numeric feature: the empirical distribution, exact when the feature
// has at most `max_points` distinct values (pixels, counts, codes: then every
// statistic equals the one on the raw reference), otherwise a quantile sketch
// of `max_points` equally weighted order statistics (the ECDF, and so the KS
// statistic, within 1/max_points + 1/n of exact; see docs/monitor.md); its
// exact mean and standard deviation; the PSI bins (edges at the exact
// reference deciles) with the exact reference counts. Per categorical feature
// (or label): the count of each category. Size is O(features x max_points).
//
// Plain value type; encode/decode in profile_json.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "drift/ecdf.h"
#include "drift/matrix.h"

namespace gantry::drift {

struct ProfileOptions {
  // Distinct values kept per feature before it becomes a quantile sketch.
  // Trade-off: size (16 bytes a point) against KS accuracy (1/max_points).
  int64_t max_points = 4096;
  // Reference-quantile bins for PSI and Jensen–Shannon (10: deciles, the
  // usual PSI convention; enough resolution, few empty bins at n = 1000).
  int bins = 10;
};

struct FeatureProfile {
  std::string name;
  int64_t count = 0;       // reference observations
  bool exact = true;       // false: values/counts are a quantile sketch
  std::vector<double> values;   // ascending, distinct
  std::vector<int64_t> counts;  // weight of each value; sums to count
  double mean = 0;
  double std_dev = 0;           // population (ddof 0)
  std::vector<double> bin_edges;     // interior, ascending; right-closed bins
  std::vector<int64_t> bin_counts;   // bin_edges.size() + 1
};

// A categorical column: integer codes (labels, predicted classes, ...).
struct CategoricalColumn {
  std::string name;
  std::span<const int64_t> codes;
};

struct CategoricalProfile {
  std::string name;
  std::map<int64_t, int64_t> counts;
};

// Result of calibrating the dataset threshold on the reference
// (calibration.h); kept with the profile it was measured for.
struct CalibrationInfo {
  double share_threshold = 0;   // dataset drift when share >= this
  int64_t window_rows = 0;      // window size it holds for
  int windows = 0;              // calibration windows
  int check_windows = 0;        // fresh windows used to measure the rate
  int check_alarms = 0;
  double false_alarm_rate = 0;  // check_alarms / check_windows
  double max_null_share = 0;    // largest share seen on calibration windows
  uint64_t seed = 0;
};

struct ReferenceProfile {
  static constexpr int kVersion = 1;
  int64_t rows = 0;
  ProfileOptions options;
  std::vector<FeatureProfile> features;
  std::vector<CategoricalProfile> categorical;
  std::optional<CalibrationInfo> calibration;
  // The model's predicted classes on the evaluation set (name
  // "predicted_class"), when the profile came with a checkpoint version that
  // recorded them (stored_profile.h). Not part of the encoded profile: the
  // profile describes the training data once per run, the predictions
  // belong to each version's weights.
  std::optional<CategoricalProfile> predictions;
};

// `names` may be empty (features are then named "f<index>") or hold one name
// per column. Refuses NaN, empty data, and mismatched categorical lengths.
Result<ReferenceProfile> BuildProfile(const MatrixView& numeric,
                                      std::span<const std::string> names = {},
                                      std::span<const CategoricalColumn> categorical = {},
                                      const ProfileOptions& options = {});

// Profile of one feature from its Ecdf.
FeatureProfile ProfileFeature(const Ecdf& exact, std::string name, const ProfileOptions& options);

// The Ecdf a feature profile stands for (exact or sketch).
Result<Ecdf> ProfileEcdf(const FeatureProfile& feature);

}  // namespace gantry::drift
