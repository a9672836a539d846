// A reference profile as it travels with a checkpoint version, and the
// calibrated profile the worker and the monitor build from raw reference data.
//
// Storage: the profile is one extra tensor of the version, named
// kProfileTensorName, dtype uint8, shape [bytes]: the MessagePack encoding of
// EncodeProfile (profile_json.h). The "trainer/" prefix marks it as training
// state for storage and the model library (docs/protocol.md): a model-only
// load leaves it out and LoadWeights ignores it, so no existing reader
// changes; content-addressed blobs store an unchanged profile once per job.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "drift/calibration.h"
#include "drift/matrix.h"
#include "drift/profile.h"

namespace gantry::drift {

inline constexpr char kProfileTensorName[] = "trainer/drift_profile";
// The version's predicted classes on the evaluation set at its latest
// evaluation (the one its test_accuracy comes from): int64 [num_classes],
// counts. Beside the profile rather than in it: it changes with every
// version, the profile once per run.
inline constexpr char kEvalPredictionsTensorName[] = "trainer/eval_predictions";

std::vector<uint8_t> ProfileToBytes(const ReferenceProfile& profile);
Result<ReferenceProfile> ProfileFromBytes(std::span<const uint8_t> bytes);

// The profile in a load_checkpoint reply ({tensors: [{name, dtype, shape,
// data: bin}]}), with its `predictions` from kEvalPredictionsTensorName when
// the reply carries that tensor; not_found naming `source` when the version
// has no profile.
Result<ReferenceProfile> ProfileFromCheckpointReply(const nlohmann::json& reply, const std::string& source);

// Predicted-class counts from kEvalPredictionsTensorName's raw bytes (int64,
// little-endian, one count per class); invalid_argument when malformed.
Result<CategoricalProfile> PredictionsFromBytes(std::span<const uint8_t> bytes);

struct ReferenceOptions {
  ProfileOptions profile;
  // Calibration windows have min(window_rows, rows / 2) rows; no calibration
  // (the detector's default threshold applies) below kMinCalibrationRows.
  CalibrationOptions calibration;
  bool calibrate = true;
};
inline constexpr int64_t kMinCalibrationRows = 40;

// Profile of `numeric` (+ categorical columns), calibrated on `numeric`.
Result<ReferenceProfile> BuildReferenceProfile(const MatrixView& numeric, std::span<const std::string> names,
                                               std::span<const CategoricalColumn> categorical,
                                               const ReferenceOptions& options = {});

}  // namespace gantry::drift
