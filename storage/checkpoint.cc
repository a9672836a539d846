#include "storage/checkpoint.h"

#include <limits>
#include <set>

#include "common/ids.h"

namespace gantry::storage {
namespace {

Status Bad(const std::string& field, const std::string& why) {
  return Status::InvalidArgument("save_checkpoint: " + field + " " + why);
}

}  // namespace

// Tensor names are keys of a state dict ("layer1.0.weight"). They never become
// file names here, but an exporter may map '/'-separated names to paths, so
// empty, "." and ".." segments and control characters are refused up front.
Status CheckTensorName(const std::string& name, const std::string& field) {
  if (name.empty()) return Bad(field, "must not be empty");
  if (name.size() > kMaxTensorNameLength) {
    return Bad(field, "is " + std::to_string(name.size()) + " characters long (at most " +
                          std::to_string(kMaxTensorNameLength) + ")");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return Bad(field, "'" + name + "' holds a control character");
  }
  // The manifest is JSON text, which cannot carry invalid UTF-8 faithfully.
  try {
    (void)json(name).dump();
  } catch (const json::exception&) {
    return Bad(field, "is not valid UTF-8");
  }
  size_t start = 0;
  while (true) {
    size_t end = name.find('/', start);
    std::string_view seg(name.data() + start, (end == std::string::npos ? name.size() : end) - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return Bad(field, "'" + name + "' has an empty, '.' or '..' path segment");
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return Status::Ok();
}

namespace {

Result<TensorData> ParseTensor(const json& t, const std::string& field) {
  if (!t.is_object()) return Bad(field, "must be a map {name, dtype, shape, data}");
  TensorData out;
  auto name = t.find("name");
  if (name == t.end() || !name->is_string()) return Bad(field + ".name", "must be a string");
  out.name = name->get<std::string>();
  GANTRY_RETURN_IF_ERROR(CheckTensorName(out.name, field + ".name"));

  auto dtype = t.find("dtype");
  if (dtype == t.end() || !dtype->is_string()) return Bad(field + ".dtype", "must be a string");
  auto parsed = ParseDType(dtype->get<std::string>());
  if (!parsed) {
    return Bad(field + ".dtype", "'" + dtype->get<std::string>() + "' is not one of " +
                                     std::string(KnownDTypes()));
  }
  out.dtype = *parsed;

  auto shape = t.find("shape");
  if (shape == t.end() || !shape->is_array()) return Bad(field + ".shape", "must be a list of integers");
  if (shape->size() > kMaxTensorRank) {
    return Bad(field + ".shape", "has " + std::to_string(shape->size()) + " dimensions (at most " +
                                     std::to_string(kMaxTensorRank) + ")");
  }
  // Element count, refusing overflow: a hostile shape must not wrap around
  // to match a small buffer.
  uint64_t elements = 1;
  bool overflow = false;
  for (size_t i = 0; i < shape->size(); ++i) {
    const json& d = (*shape)[i];
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      return Bad(field + ".shape[" + std::to_string(i) + "]", "must be an integer >= 0");
    }
    auto dim = static_cast<uint64_t>(d.get<int64_t>());
    out.shape.push_back(static_cast<int64_t>(dim));
    if (dim != 0 && elements > std::numeric_limits<uint64_t>::max() / dim) overflow = true;
    elements *= dim;
  }
  const size_t item = DTypeSize(out.dtype);
  if (elements > std::numeric_limits<uint64_t>::max() / item) overflow = true;

  auto data = t.find("data");
  if (data == t.end() || !data->is_binary()) {
    return Bad(field + ".data", "must be binary (MessagePack bin) holding the raw little-endian values");
  }
  const auto& bin = data->get_binary();
  if (overflow || elements * item != bin.size()) {
    std::string needs = overflow ? "more than 2^64" : std::to_string(elements * item);
    return Bad(field + ".data", "has " + std::to_string(bin.size()) + " bytes, shape " +
                                    ShapeString(out.shape) + " " + std::string(DTypeName(out.dtype)) +
                                    " needs " + needs);
  }
  out.data = std::span<const uint8_t>(bin.data(), bin.size());
  return out;
}

Result<int64_t> NonNegativeInt(const json& body, const char* key, bool required) {
  Result<int64_t> v = required ? GetInt(body, key) : GetInt(body, key, 0);
  if (!v.ok()) return v.status().WithContext("save_checkpoint");
  if (*v < 0) return Bad(key, "must be >= 0 (got " + std::to_string(*v) + ")");
  return v;
}

}  // namespace

uint64_t Checkpoint::DataBytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.data.size();
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

bool IsModelTensor(std::string_view name) {
  return name.rfind(kOptimizerPrefix, 0) != 0 && name.rfind(kTrainerPrefix, 0) != 0;
}

Result<Checkpoint> ParseCheckpointMeta(const json& body, const std::string& what) {
  Checkpoint c;
  auto model = GetString(body, "model");
  if (!model.ok()) return model.status().WithContext(what);
  Provenance& p = c.prov;
  p.model = *model;
  GANTRY_RETURN_IF_ERROR(ValidateName(p.model, what + ": model"));

  auto job = GetString(body, "job_id", "");
  if (!job.ok()) return job.status().WithContext(what);
  p.job_id = *job;
  if (!p.job_id.empty()) GANTRY_RETURN_IF_ERROR(ValidateName(p.job_id, what + ": job_id"));

  GANTRY_ASSIGN_OR_RETURN(p.attempt, NonNegativeInt(body, "attempt", false));
  GANTRY_ASSIGN_OR_RETURN(p.epoch, NonNegativeInt(body, "epoch", false));

  if (auto m = body.find("metrics"); m != body.end() && !m->is_null()) {
    if (!m->is_object()) return Bad("metrics", "must be a map {name: number}");
    for (const auto& [k, v] : m->items()) {
      if (k.empty()) return Bad("metrics", "has an empty name");
      if (!v.is_number()) return Bad("metrics." + k, "must be a number");
    }
    p.metrics = *m;
  }
  for (auto [key, target] : {std::pair{"meta", &p.meta}, std::pair{"optimizer_state", &c.optimizer_state},
                             std::pair{"trainer_state", &c.trainer_state}}) {
    if (auto m = body.find(key); m != body.end() && !m->is_null()) {
      if (!m->is_object()) return Bad(key, "must be a map");
      *target = *m;
    }
  }

  GANTRY_ASSIGN_OR_RETURN(p.parent_version, NonNegativeInt(body, "parent_version", false));
  auto parent_model = GetString(body, "parent_model", "");
  if (!parent_model.ok()) return parent_model.status().WithContext(what);
  if (!parent_model->empty()) {
    if (p.parent_version == 0) return Bad("parent_model", "needs parent_version (>= 1) too");
    GANTRY_RETURN_IF_ERROR(ValidateName(*parent_model, what + ": parent_model"));
  }
  if (p.has_parent()) p.parent_model = parent_model->empty() ? p.model : *parent_model;

  auto fingerprint = GetString(body, "data_fingerprint", "");
  if (!fingerprint.ok()) return fingerprint.status().WithContext(what);
  if (fingerprint->size() > kMaxFingerprintLength) {
    return Bad("data_fingerprint", "is " + std::to_string(fingerprint->size()) + " characters (at most " +
                                       std::to_string(kMaxFingerprintLength) + ")");
  }
  for (unsigned char ch : *fingerprint) {
    if (ch < 0x20 || ch == 0x7f) return Bad("data_fingerprint", "holds a control character");
  }
  p.data_fingerprint = *fingerprint;
  return c;
}

Result<Checkpoint> ParseCheckpoint(const json& body) {
  GANTRY_ASSIGN_OR_RETURN(Checkpoint c, ParseCheckpointMeta(body, "save_checkpoint"));
  GANTRY_ASSIGN_OR_RETURN(c.prov.step, NonNegativeInt(body, "step", true));

  auto tensors = body.find("tensors");
  if (tensors == body.end() || !tensors->is_array()) {
    return Bad("tensors", "must be a list of {name, dtype, shape, data}");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < tensors->size(); ++i) {
    std::string field = "tensors[" + std::to_string(i) + "]";
    GANTRY_ASSIGN_OR_RETURN(TensorData t, ParseTensor((*tensors)[i], field));
    if (!seen.insert(t.name).second) {
      return Bad(field + ".name", "'" + t.name + "' appears twice (tensor names must be unique)");
    }
    c.tensors.push_back(std::move(t));
  }
  return c;
}

}  // namespace gantry::storage
