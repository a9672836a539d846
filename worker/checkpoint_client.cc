#include "worker/checkpoint_client.h"

#include <torch/torch.h>

#include <bit>
#include <cstring>

namespace gantry::worker {
namespace {

static_assert(std::endian::native == std::endian::little,
              "checkpoint tensors are sent as raw little-endian bytes");

Result<std::string> DtypeName(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return std::string("float32");
    case torch::kDouble: return std::string("float64");
    case torch::kLong: return std::string("int64");
    case torch::kInt: return std::string("int32");
    case torch::kByte: return std::string("uint8");
    default:
      return Status::InvalidArgument(std::string("checkpoint: unsupported tensor dtype ") +
                                     std::string(c10::toString(t)));
  }
}

}  // namespace

CheckpointClient::CheckpointClient(zmq::context_t& ctx, const std::string& endpoint) {
  if (!endpoint.empty()) rpc_.emplace(ctx, endpoint, kTimeout);
}

Result<json> CheckpointClient::TensorToJson(const std::string& name, const torch::Tensor& t) {
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

Result<json> CheckpointClient::BuildBody(const CheckpointRequest& req,
                                         const torch::nn::Module& module) {
  json tensors = json::array();
  try {
    for (const auto& item : module.named_parameters(/*recurse=*/true)) {
      GANTRY_ASSIGN_OR_RETURN(json t, TensorToJson(item.key(), item.value()));
      tensors.push_back(std::move(t));
    }
    for (const auto& item : module.named_buffers(/*recurse=*/true)) {
      GANTRY_ASSIGN_OR_RETURN(json t, TensorToJson(item.key(), item.value()));
      tensors.push_back(std::move(t));
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("checkpoint: reading model state: ") + e.what());
  }
  return json{{"model", req.model}, {"job_id", req.job_id}, {"attempt", req.attempt},
              {"step", req.step},   {"epoch", req.epoch},   {"metrics", req.metrics},
              {"meta", req.meta},   {"tensors", std::move(tensors)}};
}

Result<SavedCheckpoint> CheckpointClient::Save(const CheckpointRequest& req,
                                               const torch::nn::Module& module) {
  if (!rpc_) return SavedCheckpoint{req.model, 0};
  GANTRY_ASSIGN_OR_RETURN(json body, BuildBody(req, module));
  auto reply = rpc_->Call("save_checkpoint", body);
  if (!reply.ok()) return reply.status().WithContext("save_checkpoint to " + rpc_->endpoint());
  SavedCheckpoint saved;
  auto model = GetString(*reply, "model", req.model);
  auto version = GetInt(*reply, "version");
  if (!model.ok() || !version.ok()) {
    return Status::Internal("save_checkpoint: bad reply from " + rpc_->endpoint() + ": " +
                            (model.ok() ? version.status() : model.status()).message());
  }
  saved.model = *model;
  saved.version = *version;
  return saved;
}

}  // namespace gantry::worker
