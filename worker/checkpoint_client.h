// CheckpointClient: sends a model's state to the storage service.
//
// One `save_checkpoint` request (common/rpc.h) per save. Body:
//   {model, job_id, attempt, step, epoch, metrics: {...}, meta: {...},
//    tensors: [{name, dtype, shape, data: binary}]}
// where data is the tensor's contiguous bytes in little-endian order (the
// host order of every platform Gantry builds on) and dtype is one of
// float32, float64, int64, int32, uint8. The reply body is {model, version}.
// An empty endpoint makes a disabled client: Save() succeeds and sends
// nothing (ranks > 0, tests, benchmarks).
//
// Thread safety: one thread (RpcClient). The zmq context must outlive it.
#pragma once

#include <torch/nn/module.h>

#include <chrono>
#include <optional>
#include <string>

#include "common/rpc.h"

namespace gantry::worker {

struct CheckpointRequest {
  std::string model;  // registry model name
  std::string job_id;
  int attempt = 1;
  int64_t step = 0;
  int64_t epoch = 0;
  json metrics = json::object();
  json meta = json::object();
};

struct SavedCheckpoint {
  std::string model;
  int64_t version = 0;
};

class CheckpointClient {
 public:
  // A large checkpoint on a slow disk takes a while to fsync; the storage
  // service answers only once the version is durable.
  static constexpr std::chrono::seconds kTimeout{60};

  CheckpointClient(zmq::context_t& ctx, const std::string& endpoint);

  bool enabled() const { return rpc_.has_value(); }
  // Saves all parameters and buffers of `module`. Disabled: {model, 0}.
  Result<SavedCheckpoint> Save(const CheckpointRequest& req, const torch::nn::Module& module);

  // The request body Save() sends (public for tests).
  static Result<json> BuildBody(const CheckpointRequest& req, const torch::nn::Module& module);
  // {name, dtype, shape, data} of one tensor.
  static Result<json> TensorToJson(const std::string& name, const torch::Tensor& t);

 private:
  std::optional<RpcClient> rpc_;
};

}  // namespace gantry::worker
