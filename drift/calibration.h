// Calibrating the dataset-drift threshold on the reference itself.
//
//  1. Draw `windows` windows of `window_rows` rows from the reference, each
//     without replacement (seeded: std::mt19937_64(seed)), and compare each
//     with the reference profile: these windows have no drift by
//     construction, so their shares of drifted features are the null
//     distribution of the share.
//  2. The threshold is the smallest share that at most
//     floor(target_false_alarm x windows) of them reach, i.e. just above the
//     (k+1)-th largest null share, and at least `min_share`.
//  3. The false-alarm rate is measured on `check_windows` fresh windows
//     (seed + 1) not used in step 2, and reported with the threshold.
//
// A window drawn from the reference is compared with a profile that contains
// it, which makes the null shares slightly small; the check in step 3 uses
// the same construction, so it measures the threshold as it was chosen. The
// cost is (windows + check_windows) comparisons of window_rows rows.
//
// Pure function of its inputs; thread-safe.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "drift/detector.h"
#include "drift/matrix.h"
#include "drift/profile.h"

namespace gantry::drift {

struct CalibrationOptions {
  int64_t window_rows = 1000;
  int windows = 100;
  int check_windows = 100;
  uint64_t seed = 1;
  // Wanted share of no-drift windows that alarm.
  double target_false_alarm = 0.01;
  // Floor on the threshold. Windows drawn from the reference cannot show how
  // later data differs in collection from the reference even without drift:
  // on Fashion-MNIST, untouched test samples flag up to ~3% of the pixels
  // against the training set while reference windows flag none. 0.05 keeps
  // those quiet; real drift (brightness, rotation) flags ~75% (docs/monitor.md).
  double min_share = 0.05;
};

// `reference` is the raw data the detector's profile was built from.
Result<CalibrationInfo> CalibrateShareThreshold(const DriftDetector& detector,
                                                const MatrixView& reference,
                                                const CalibrationOptions& options,
                                                DriftOptions drift = {});

}  // namespace gantry::drift
