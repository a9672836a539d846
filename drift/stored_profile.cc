#include "drift/stored_profile.h"

#include <algorithm>
#include <cstring>

#include "drift/detector.h"
#include "drift/profile_json.h"

namespace gantry::drift {

using nlohmann::json;

std::vector<uint8_t> ProfileToBytes(const ReferenceProfile& profile) {
  return json::to_msgpack(EncodeProfile(profile));
}

Result<ReferenceProfile> ProfileFromBytes(std::span<const uint8_t> bytes) {
  json j = json::from_msgpack(bytes.begin(), bytes.end(), /*strict=*/true, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("drift profile: not valid MessagePack");
  return DecodeProfile(j);
}

Result<CategoricalProfile> PredictionsFromBytes(std::span<const uint8_t> bytes) {
  if (bytes.size() % sizeof(int64_t) != 0 || bytes.empty()) {
    return Status::InvalidArgument(std::string(kEvalPredictionsTensorName) + ": expected int64 counts, got " +
                                   std::to_string(bytes.size()) + " bytes");
  }
  CategoricalProfile p{"predicted_class", {}};
  for (size_t i = 0; i < bytes.size() / sizeof(int64_t); ++i) {
    int64_t n = 0;
    std::memcpy(&n, bytes.data() + i * sizeof(int64_t), sizeof n);
    if (n < 0) return Status::InvalidArgument(std::string(kEvalPredictionsTensorName) + ": a negative count");
    if (n > 0) p.counts[static_cast<int64_t>(i)] = n;
  }
  return p;
}

Result<ReferenceProfile> ProfileFromCheckpointReply(const json& reply, const std::string& source) {
  auto tensors = reply.find("tensors");
  if (tensors == reply.end() || !tensors->is_array()) {
    return Status::InvalidArgument(source + ": the load_checkpoint reply has no tensors list");
  }
  const json* profile = nullptr;
  const json* predictions = nullptr;
  for (const json& t : *tensors) {
    if (!t.is_object()) continue;
    const std::string name = t.value("name", "");
    if (name == kProfileTensorName) profile = &t;
    if (name == kEvalPredictionsTensorName) predictions = &t;
  }
  if (profile == nullptr) {
    return Status::NotFound(source + " has no drift profile (tensor " + kProfileTensorName +
                            "; versions saved before profiles existed have none): compare with the training data "
                            "instead, `gantry drift compare TRAIN DATA`");
  }
  auto data = profile->find("data");
  if (data == profile->end() || !data->is_binary()) {
    return Status::InvalidArgument(source + ": tensor " + kProfileTensorName + " has no binary data");
  }
  const auto& bytes = data->get_binary();
  auto p = ProfileFromBytes(std::span<const uint8_t>(bytes.data(), bytes.size()));
  if (!p.ok()) return p.status().WithContext(source);
  if (predictions != nullptr) {
    auto d = predictions->find("data");
    if (d == predictions->end() || !d->is_binary() || predictions->value("dtype", "") != "int64") {
      return Status::InvalidArgument(source + ": tensor " + kEvalPredictionsTensorName + " is not int64 data");
    }
    const auto& b = d->get_binary();
    GANTRY_ASSIGN_OR_RETURN(p->predictions, PredictionsFromBytes(std::span<const uint8_t>(b.data(), b.size())));
  }
  return p;
}

Result<ReferenceProfile> BuildReferenceProfile(const MatrixView& numeric, std::span<const std::string> names,
                                               std::span<const CategoricalColumn> categorical,
                                               const ReferenceOptions& options) {
  GANTRY_ASSIGN_OR_RETURN(ReferenceProfile profile, BuildProfile(numeric, names, categorical, options.profile));
  const auto rows = static_cast<int64_t>(numeric.rows);
  if (!options.calibrate || rows < kMinCalibrationRows || numeric.cols == 0) return profile;
  GANTRY_ASSIGN_OR_RETURN(DriftDetector detector, DriftDetector::Create(profile));
  CalibrationOptions c = options.calibration;
  c.window_rows = std::min(c.window_rows, rows / 2);
  GANTRY_ASSIGN_OR_RETURN(CalibrationInfo info, CalibrateShareThreshold(detector, numeric, c));
  profile.calibration = info;
  return profile;
}

}  // namespace gantry::drift
