#include "worker/checkpoint_client.h"

#include <torch/torch.h>

#include <bit>
#include <cstring>

namespace gantry::worker {
namespace {

static_assert(std::endian::native == std::endian::little,
              "checkpoint tensors are sent as raw little-endian bytes");

constexpr std::pair<torch::ScalarType, const char*> kDtypes[] = {
    {torch::kFloat, "float32"}, {torch::kDouble, "float64"}, {torch::kLong, "int64"},
    {torch::kInt, "int32"},     {torch::kByte, "uint8"}};

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

}  // namespace

CheckpointClient::CheckpointClient(zmq::context_t& ctx, const std::string& endpoint) {
  if (!endpoint.empty()) rpc_.emplace(ctx, endpoint, kTimeout);
}

Result<json> TensorToJson(const std::string& name, const torch::Tensor& t) {
  GANTRY_ASSIGN_OR_RETURN(std::string dtype, DtypeName(t.scalar_type()));
  try {
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    std::vector<uint8_t> bytes(static_cast<size_t>(c.nbytes()));
    if (!bytes.empty()) std::memcpy(bytes.data(), c.data_ptr(), bytes.size());
    return json{{"name", name},
                {"dtype", dtype},
                {"shape", c.sizes().vec()},
                {"data", json::binary(std::move(bytes))}};
  } catch (const std::exception& e) {
    return Status::Internal("checkpoint: copying tensor " + name + ": " + e.what());
  }
}

Result<std::map<std::string, torch::Tensor>> TensorsFromJson(const json& tensors) {
  if (!tensors.is_array()) return Status::InvalidArgument("checkpoint: 'tensors' must be a list");
  std::map<std::string, torch::Tensor> out;
  try {
    for (const json& t : tensors) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("data") ||
          !t["data"].is_binary() || !t.contains("shape") || !t["shape"].is_array() ||
          !t.contains("dtype") || !t["dtype"].is_string()) {
        return Status::InvalidArgument("checkpoint: a tensor lacks name, dtype, shape or data");
      }
      const std::string name = t["name"];
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

Result<SavedCheckpoint> CheckpointClient::Save(const json& body) {
  const std::string model = body.value("model", "");
  if (!rpc_) return SavedCheckpoint{model, 0};
  auto reply = rpc_->Call("save_checkpoint", body);
  if (!reply.ok()) return reply.status().WithContext("save_checkpoint to " + rpc_->endpoint());
  auto name = GetString(*reply, "model", model);
  auto version = GetInt(*reply, "version");
  if (!name.ok() || !version.ok()) {
    return Status::Internal("save_checkpoint: bad reply from " + rpc_->endpoint() + ": " +
                            (name.ok() ? version.status() : name.status()).message());
  }
  return SavedCheckpoint{*name, *version};
}

Result<std::optional<json>> CheckpointClient::LoadLatestOfJob(const std::string& model,
                                                              const std::string& job_id) {
  if (!rpc_) return std::optional<json>();
  auto listed = rpc_->Call("list_versions", {{"model", model}});
  if (!listed.ok()) {
    if (listed.status().code() == StatusCode::kNotFound) return std::optional<json>();
    return listed.status().WithContext("list_versions " + model + " at " + rpc_->endpoint());
  }
  int64_t newest = 0;
  if (listed->contains("versions") && (*listed)["versions"].is_array()) {
    for (const json& v : (*listed)["versions"]) {
      if (v.is_object() && v.value("job_id", "") == job_id) newest = std::max(newest, v.value("version", int64_t{0}));
    }
  }
  if (newest == 0) return std::optional<json>();
  const std::string ref = "v" + std::to_string(newest);
  auto loaded = rpc_->Call("load_checkpoint", {{"model", model}, {"ref", ref}, {"version", newest}, {"job_id", job_id}});
  if (!loaded.ok()) return loaded.status().WithContext("load_checkpoint " + model + "@" + ref);
  if (loaded->value("version", int64_t{0}) != newest) {
    return Status::Internal("load_checkpoint " + model + "@" + ref + ": the reply holds another version");
  }
  return std::optional<json>(std::move(loaded).value());
}

Result<json> CheckpointClient::LoadRef(const std::string& model, const std::string& ref, bool model_only) {
  if (!rpc_) return Status::FailedPrecondition("no storage endpoint: cannot load " + model + "@" + ref);
  json body = {{"model", model}, {"ref", ref}};
  // vN also travels as {version: N}, the form the issue names.
  if (ref.size() > 1 && ref.size() < 19 && ref[0] == 'v' && ref.find_first_not_of("0123456789", 1) == std::string::npos) {
    body["version"] = std::stoll(ref.substr(1));
  }
  if (model_only) body["include"] = "model";
  auto loaded = rpc_->Call("load_checkpoint", body);
  if (!loaded.ok()) return loaded.status().WithContext("load_checkpoint " + model + "@" + ref);
  return std::move(loaded).value();
}

}  // namespace gantry::worker
