#include "model/tensor_wire.h"

#include <torch/torch.h>

#include <bit>
#include <cstring>

namespace gantry::model {
namespace {

static_assert(std::endian::native == std::endian::little,
              "checkpoint tensors are sent as raw little-endian bytes");

constexpr std::pair<torch::ScalarType, const char*> kDtypes[] = {
    {torch::kFloat, "float32"}, {torch::kDouble, "float64"}, {torch::kLong, "int64"},
    {torch::kInt, "int32"},     {torch::kByte, "uint8"}};

}  // namespace

Result<std::string> DtypeName(torch::ScalarType t) {
  for (const auto& [type, name] : kDtypes) {
    if (type == t) return std::string(name);
  }
  return Status::InvalidArgument(std::string("checkpoint: unsupported tensor dtype ") +
                                 std::string(c10::toString(t)));
}

Result<torch::ScalarType> DtypeFromName(const std::string& n) {
  for (const auto& [type, name] : kDtypes) {
    if (n == name) return type;
  }
  return Status::InvalidArgument("checkpoint: unsupported tensor dtype '" + n + "'");
}

Result<TensorMap> TensorsFromJson(const json& tensors, const std::function<bool(const std::string&)>& keep) {
  if (!tensors.is_array()) return Status::InvalidArgument("checkpoint: 'tensors' must be a list");
  TensorMap out;
  try {
    for (const json& t : tensors) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("data") ||
          !t["data"].is_binary() || !t.contains("shape") || !t["shape"].is_array() ||
          !t.contains("dtype") || !t["dtype"].is_string()) {
        return Status::InvalidArgument("checkpoint: a tensor lacks name, dtype, shape or data");
      }
      const std::string name = t["name"];
      if (keep && !keep(name)) continue;
      GANTRY_ASSIGN_OR_RETURN(torch::ScalarType type, DtypeFromName(t["dtype"]));
      std::vector<int64_t> shape = t["shape"].get<std::vector<int64_t>>();
      const auto& data = t["data"].get_binary();
      torch::Tensor x = torch::empty(shape, torch::TensorOptions(type));
      if (static_cast<size_t>(x.nbytes()) != data.size()) {
        return Status::InvalidArgument("checkpoint: tensor " + name + " has " + std::to_string(data.size()) +
                                       " bytes, its shape needs " + std::to_string(x.nbytes()));
      }
      if (!data.empty()) std::memcpy(x.data_ptr(), data.data(), data.size());
      out[name] = std::move(x);
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("checkpoint: bad tensor list: ") + e.what());
  }
  return out;
}

Result<ModelManifest> ManifestFromMeta(const json& meta, const std::string& where) {
  ModelManifest m;
  const std::string w = where + " meta";
  if (!meta.is_object()) return Status::Corruption(w + " must be an object");
  GANTRY_ASSIGN_OR_RETURN(m.description, JsonField<std::string>(meta, "model", "", w));
  GANTRY_ASSIGN_OR_RETURN(m.builtin, JsonField<std::string>(meta, "model_builtin", "", w));
  GANTRY_ASSIGN_OR_RETURN(m.hidden, JsonField<std::vector<int64_t>>(meta, "model_hidden", {}, w));
  GANTRY_ASSIGN_OR_RETURN(m.torchscript, JsonField<std::string>(meta, "model_torchscript", "", w));
  // Versions saved before model_torchscript existed name the file in `model`.
  constexpr std::string_view kScriptPrefix = "torchscript ";
  if (m.builtin == "torchscript" && m.torchscript.empty() && m.description.starts_with(kScriptPrefix)) {
    m.torchscript = m.description.substr(kScriptPrefix.size());
  }
  GANTRY_ASSIGN_OR_RETURN(m.input_shape, JsonField<std::vector<int64_t>>(meta, "input_shape", {}, w));
  GANTRY_ASSIGN_OR_RETURN(m.num_classes, JsonField<int64_t>(meta, "num_classes", 0, w));
  auto norm = meta.find("normalize");
  if (norm != meta.end() && norm->is_object()) {
    Normalization n;
    GANTRY_ASSIGN_OR_RETURN(n.mean, JsonField<double>(*norm, "mean", 0.0, w + " normalize"));
    GANTRY_ASSIGN_OR_RETURN(n.std, JsonField<double>(*norm, "std", 1.0, w + " normalize"));
    if (!(n.std > 0)) return Status::Corruption(w + " normalize.std must be > 0");
    m.normalize = n;
  }
  return m;
}

}  // namespace gantry::model
