// JSON encoding of ReferenceProfile (stored with a checkpoint version) and of
// DatasetDrift (for the CLI and the monitor's API). Decoding validates every
// field's type, sizes and invariants and answers bad input with
// invalid_argument naming the field; it never throws.
//
// Profile schema (version 1):
//   {"version": 1, "rows": N, "max_points": K, "bins": B,
//    "features": [{"name", "count", "exact", "values": [..], "counts": [..],
//                  "mean", "std", "bin_edges": [..], "bin_counts": [..]}],
//    "categorical": [{"name", "counts": [[code, count], ...]}],
//    "calibration": {"share_threshold", "window_rows", "windows",
//                    "check_windows", "check_alarms", "false_alarm_rate",
//                    "max_null_share", "seed"}   (optional)}
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "drift/detector.h"
#include "drift/profile.h"

namespace gantry::drift {

nlohmann::json EncodeProfile(const ReferenceProfile& profile);
Result<ReferenceProfile> DecodeProfile(const nlohmann::json& j);

// One object per feature with every statistic, most drifted first, plus the
// verdict; non-finite numbers (none expected) and absent values are null.
nlohmann::json EncodeDrift(const DatasetDrift& drift);

}  // namespace gantry::drift
