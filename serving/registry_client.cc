#include "serving/registry_client.h"

#include <torch/torch.h>

#include <bit>
#include <cstring>

namespace gantry::serving {
namespace {

static_assert(std::endian::native == std::endian::little,
              "checkpoint tensors are sent as raw little-endian bytes");

constexpr std::pair<torch::ScalarType, const char*> kDtypes[] = {
    {torch::kFloat, "float32"}, {torch::kDouble, "float64"}, {torch::kLong, "int64"},
    {torch::kInt, "int32"},     {torch::kByte, "uint8"}};

template <typename T>
Result<T> Field(const json& obj, const char* key, T fallback, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const std::exception& e) {
    return Status::Corruption(where + ": field '" + key + "' has the wrong type (" + e.what() + ")");
  }
}

}  // namespace

Result<model::TensorMap> WeightTensorsFromJson(const json& tensors) {
  if (!tensors.is_array()) return Status::Corruption("checkpoint: 'tensors' must be a list");
  model::TensorMap out;
  try {
    for (const json& t : tensors) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("data") ||
          !t["data"].is_binary() || !t.contains("shape") || !t["shape"].is_array() || !t.contains("dtype") ||
          !t["dtype"].is_string()) {
        return Status::Corruption("checkpoint: a tensor lacks name, dtype, shape or data");
      }
      const std::string name = t["name"];
      if (!model::IsWeightName(name)) continue;
      const std::string dtype = t["dtype"];
      const torch::ScalarType* type = nullptr;
      for (const auto& d : kDtypes) {
        if (dtype == d.second) type = &d.first;
      }
      if (type == nullptr) return Status::Corruption("checkpoint: tensor " + name + " has dtype '" + dtype + "'");
      const auto& data = t["data"].get_binary();
      torch::Tensor x = torch::empty(t["shape"].get<std::vector<int64_t>>(), torch::TensorOptions(*type));
      if (static_cast<size_t>(x.nbytes()) != data.size()) {
        return Status::Corruption("checkpoint: tensor " + name + " has " + std::to_string(data.size()) +
                                  " bytes, its shape needs " + std::to_string(x.nbytes()));
      }
      if (!data.empty()) std::memcpy(x.data_ptr(), data.data(), data.size());
      out[name] = std::move(x);
    }
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("checkpoint: bad tensor list: ") + e.what());
  }
  return out;
}

Result<model::ModelManifest> ManifestFromMeta(const json& meta, const std::string& where) {
  model::ModelManifest m;
  const std::string w = where + " meta";
  if (!meta.is_object()) return Status::Corruption(w + " must be an object");
  GANTRY_ASSIGN_OR_RETURN(m.description, Field<std::string>(meta, "model", "", w));
  GANTRY_ASSIGN_OR_RETURN(m.builtin, Field<std::string>(meta, "model_builtin", "", w));
  GANTRY_ASSIGN_OR_RETURN(m.hidden, Field<std::vector<int64_t>>(meta, "model_hidden", {}, w));
  GANTRY_ASSIGN_OR_RETURN(m.torchscript, Field<std::string>(meta, "model_torchscript", "", w));
  constexpr std::string_view kScriptPrefix = "torchscript ";
  if (m.builtin == "torchscript" && m.torchscript.empty() && m.description.starts_with(kScriptPrefix)) {
    m.torchscript = m.description.substr(kScriptPrefix.size());
  }
  GANTRY_ASSIGN_OR_RETURN(m.input_shape, Field<std::vector<int64_t>>(meta, "input_shape", {}, w));
  GANTRY_ASSIGN_OR_RETURN(m.num_classes, Field<int64_t>(meta, "num_classes", 0, w));
  auto norm = meta.find("normalize");
  if (norm != meta.end() && norm->is_object()) {
    model::Normalization n;
    GANTRY_ASSIGN_OR_RETURN(n.mean, Field<double>(*norm, "mean", 0.0, w + " normalize"));
    GANTRY_ASSIGN_OR_RETURN(n.std, Field<double>(*norm, "std", 1.0, w + " normalize"));
    if (!(n.std > 0)) return Status::Corruption(w + " normalize.std must be > 0");
    m.normalize = n;
  }
  return m;
}

RegistryClient::RegistryClient(zmq::context_t& ctx, const std::string& endpoint) : rpc_(ctx, endpoint, kTimeout) {}

Result<std::string> RegistryClient::FeedEndpoint() {
  GANTRY_ASSIGN_OR_RETURN(json reply, rpc_.Call("ping", json::object(), std::chrono::seconds(5)));
  auto eps = reply.find("endpoints");
  if (eps == reply.end() || !eps->is_object() || !eps->contains("feed") || !(*eps)["feed"].is_string()) {
    return Status::Unavailable("storage at " + rpc_.endpoint() +
                               " announces no registry feed (an older gantry-storage?); hot reload needs it");
  }
  return (*eps)["feed"].get<std::string>();
}

Result<LoadedVersion> RegistryClient::Load(const std::string& model, const std::string& ref) {
  const std::string where = "load_checkpoint " + model + "@" + ref;
  auto reply = rpc_.Call("load_checkpoint", {{"model", model}, {"ref", ref}, {"include", "model"}});
  if (!reply.ok()) return reply.status().WithContext(where);
  LoadedVersion v;
  v.model = model;
  GANTRY_ASSIGN_OR_RETURN(v.version, Field<int64_t>(*reply, "version", 0, where));
  if (v.version < 1) return Status::Corruption(where + ": the reply names no version");
  v.meta = reply->value("meta", json::object());
  GANTRY_ASSIGN_OR_RETURN(v.manifest, ManifestFromMeta(v.meta, where));
  GANTRY_ASSIGN_OR_RETURN(v.quantization, Field<std::string>(v.meta, "quantization", "", where + " meta"));
  auto metrics = reply->find("metrics");
  if (metrics != reply->end() && metrics->is_object()) {
    for (const auto& [k, val] : metrics->items()) {
      if (val.is_number()) v.metrics[k] = val.get<double>();
    }
  }
  auto tensors = WeightTensorsFromJson(reply->value("tensors", json()));
  if (!tensors.ok()) return tensors.status().WithContext(where);
  v.tensors = std::move(tensors).value();
  return v;
}

Result<int64_t> RegistryClient::Resolve(const std::string& model, const std::string& ref) {
  auto reply = rpc_.Call("get_version", {{"model", model}, {"ref", ref}});
  if (!reply.ok()) return reply.status().WithContext("get_version " + model + "@" + ref);
  return Field<int64_t>(*reply, "version", 0, "get_version reply");
}

Result<int64_t> RegistryClient::Save(const DerivedVersion& v) {
  json tensors = json::array();
  for (const auto& [name, t] : v.tensors) {
    torch::Tensor c = t.detach().to(torch::kCPU).to(torch::kFloat).contiguous();
    std::vector<uint8_t> bytes(static_cast<size_t>(c.nbytes()));
    if (!bytes.empty()) std::memcpy(bytes.data(), c.data_ptr(), bytes.size());
    tensors.push_back({{"name", name}, {"dtype", "float32"}, {"shape", c.sizes().vec()},
                       {"data", json::binary(std::move(bytes))}});
  }
  json body = {{"model", v.model}, {"step", 0}, {"metrics", v.metrics}, {"meta", v.meta},
               {"tensors", std::move(tensors)}};
  if (v.parent_version > 0) {
    body["parent_model"] = v.parent_model.empty() ? v.model : v.parent_model;
    body["parent_version"] = v.parent_version;
  }
  auto reply = rpc_.Call("save_checkpoint", body);
  if (!reply.ok()) return reply.status().WithContext("save_checkpoint " + v.model);
  return Field<int64_t>(*reply, "version", 0, "save_checkpoint reply");
}

Status RegistryClient::Tag(const std::string& model, int64_t version, const std::string& tag) {
  auto reply = rpc_.Call("tag_version", {{"model", model}, {"ref", "v" + std::to_string(version)}, {"tag", tag}});
  return reply.ok() ? Status::Ok() : reply.status().WithContext("tag_version " + model);
}

}  // namespace gantry::serving
