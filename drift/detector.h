// DriftDetector: compares new data with a ReferenceProfile, per feature and
// for the whole dataset.
//
// Per numeric feature: KS (statistic, p-value; ks.h), PSI and Jensen–Shannon
// distance on the profile's bins, Wasserstein-1 and Wasserstein-1 divided by
// the reference's standard deviation (absent when that is 0). Per
// categorical feature: chi-square homogeneity test (statistics.h).
//
// Dataset verdict:
//  1. The KS p-values of the numeric features and the chi-square p-values of
//     the categorical ones form one family of m tests.
//  2. Multiple-testing correction over that family: Benjamini–Hochberg
//     adjusted p-values (default; controls the false discovery rate at
//     `fdr`, and under "no drift anywhere" also the chance of flagging any
//     feature) or Bonferroni (family-wise error rate; stricter).
//  3. A feature is drifted when its adjusted p-value <= fdr.
//  4. share = drifted / m; dataset drift when share >= share_threshold (the
//     calibrated threshold of the profile if it has one, else the option).
//  5. Features are listed most drifted first: adjusted p ascending, then KS
//     statistic (chi-square statistic per dof) descending.
//
// Thread safety: const methods may run concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "drift/ecdf.h"
#include "drift/ks.h"
#include "drift/matrix.h"
#include "drift/profile.h"
#include "drift/statistics.h"

namespace gantry::drift {

enum class Correction { kBenjaminiHochberg, kBonferroni };

struct DriftOptions {
  // False discovery rate (BH) or family-wise error rate (Bonferroni).
  double fdr = 0.05;
  Correction correction = Correction::kBenjaminiHochberg;
  // Used when the profile carries no calibration. 0.05: on Fashion-MNIST a
  // x0.8 brightness change or a 10 degree rotation drifts ~75% of the pixels,
  // untouched test samples at most ~3% (docs/monitor.md).
  double share_threshold = 0.05;
  // Ignore the profile's calibrated threshold and use share_threshold.
  bool use_calibration = true;
};

struct FeatureDrift {
  size_t index = 0;  // column in the profile
  std::string name;
  KsResult ks;
  double psi = 0;
  double js_distance = 0;
  double wasserstein = 0;
  std::optional<double> wasserstein_normed;  // wasserstein / reference std
  double adjusted_p = 1;
  bool drifted = false;
};

struct CategoricalDrift {
  size_t index = 0;
  std::string name;
  ChiSquareResult chi2;
  double adjusted_p = 1;
  bool drifted = false;
};

struct DatasetDrift {
  int64_t reference_rows = 0;
  int64_t current_rows = 0;
  std::vector<FeatureDrift> features;          // most drifted first
  std::vector<CategoricalDrift> categorical;   // most drifted first
  size_t tested = 0;
  size_t drifted = 0;
  double share = 0;
  double share_threshold = 0;
  bool dataset_drift = false;
  Correction correction = Correction::kBenjaminiHochberg;
  double fdr = 0;
};

// Adjusted p-values, same order as `p` (BH: step-up q-values, capped at 1).
std::vector<double> AdjustPValues(std::span<const double> p, Correction correction);

class DriftDetector {
 public:
  // Prepares the profile's distributions; refuses an inconsistent profile.
  static Result<DriftDetector> Create(ReferenceProfile profile);

  // `current` must have the profile's numeric columns; `categorical` the
  // profile's categorical columns by position (or be empty to skip them).
  Result<DatasetDrift> Compare(const MatrixView& current,
                               std::span<const CategoricalColumn> categorical = {},
                               const DriftOptions& options = {}) const;

  const ReferenceProfile& profile() const { return profile_; }
  void set_calibration(const CalibrationInfo& c) { profile_.calibration = c; }

 private:
  DriftDetector() = default;
  ReferenceProfile profile_;
  std::vector<Ecdf> reference_;  // one per numeric feature
};

}  // namespace gantry::drift
