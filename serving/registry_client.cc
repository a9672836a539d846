#include "serving/registry_client.h"

#include <torch/torch.h>

#include <cstring>

#include "drift/stored_profile.h"
#include "model/tensor_wire.h"

namespace gantry::serving {
using model::JsonField;

Result<model::TensorMap> WeightTensorsFromJson(const json& tensors) {
  return model::TensorsFromJson(tensors, [](const std::string& name) { return model::IsWeightName(name); });
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

Result<LoadedVersion> RegistryClient::Load(const std::string& model, const std::string& ref, bool with_profile) {
  const std::string where = "load_checkpoint " + model + "@" + ref;
  // The drift profile is training state (trainer/…): asked for by name, so
  // the optimizer state (as large as the model, or twice) stays in storage.
  json body = {{"model", model}, {"ref", ref}, {"include", "model"}};
  if (with_profile) body["also"] = json::array({drift::kProfileTensorName});
  auto reply = rpc_.Call("load_checkpoint", body);
  if (!reply.ok()) return reply.status().WithContext(where);
  LoadedVersion v;
  v.model = model;
  GANTRY_ASSIGN_OR_RETURN(v.version, JsonField<int64_t>(*reply, "version", 0, where));
  if (v.version < 1) return Status::Corruption(where + ": the reply names no version");
  v.meta = reply->value("meta", json::object());
  GANTRY_ASSIGN_OR_RETURN(v.manifest, model::ManifestFromMeta(v.meta, where));
  GANTRY_ASSIGN_OR_RETURN(v.quantization, JsonField<std::string>(v.meta, "quantization", "", where + " meta"));
  auto metrics = reply->find("metrics");
  if (metrics != reply->end() && metrics->is_object()) {
    for (const auto& [k, val] : metrics->items()) {
      if (val.is_number()) v.metrics[k] = val.get<double>();
    }
  }
  auto tensors = WeightTensorsFromJson(reply->value("tensors", json()));
  if (!tensors.ok()) return tensors.status().WithContext(where);
  v.tensors = std::move(tensors).value();
  if (with_profile) {
    auto profile = drift::ProfileFromCheckpointReply(*reply, v.Source());
    if (profile.ok()) {
      v.profile = std::move(profile).value();
    } else if (profile.status().code() != StatusCode::kNotFound) {
      v.profile_error = profile.status().ToString();
    }
  }
  return v;
}

Result<int64_t> RegistryClient::Resolve(const std::string& model, const std::string& ref) {
  auto reply = rpc_.Call("get_version", {{"model", model}, {"ref", ref}});
  if (!reply.ok()) return reply.status().WithContext("get_version " + model + "@" + ref);
  return JsonField<int64_t>(*reply, "version", 0, "get_version reply");
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
  return JsonField<int64_t>(*reply, "version", 0, "save_checkpoint reply");
}

Status RegistryClient::Tag(const std::string& model, int64_t version, const std::string& tag) {
  auto reply = rpc_.Call("tag_version", {{"model", model}, {"ref", "v" + std::to_string(version)}, {"tag", tag}});
  return reply.ok() ? Status::Ok() : reply.status().WithContext("tag_version " + model);
}

}  // namespace gantry::serving
