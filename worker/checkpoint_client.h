// CheckpointStore: how a rank saves and reads back checkpoints; and
// CheckpointClient, its implementation over the storage service's RPC API.
//
// Requests (docs/protocol.md, "Storage"; docs/worker.md, "Checkpoints"):
//   save_checkpoint {model, job_id, attempt, step, epoch, metrics, meta,
//                    trainer_state, optimizer_state, parent_model?,
//                    parent_version?, tensors: [{name, dtype, shape, data}]}
//                   -> {model, version}
//   list_versions   {model} -> {versions: [{version, job_id, ...}]}
//   load_checkpoint {model, ref, version?, job_id?, include?: "model"}
//                   -> {model, version, job_id, attempt, step, epoch,
//                       metrics, meta, trainer_state?, tensors: [...]}
// Tensor data is the contiguous bytes in little-endian order (the host
// order of every platform Gantry builds on); dtype is one of float32,
// float64, int64, int32, uint8.
//
// LoadLatestOfJob() finds the newest version whose job_id is this job's with
// list_versions and then loads it by version, so it needs nothing from the
// storage service beyond the requests above; it also sends the job_id and
// version the issue's `load_checkpoint {model, version?, job_id?}` names.
//
// An empty endpoint makes a disabled client: Save() succeeds and sends
// nothing, loads find nothing (ranks > 0, tests, benchmarks).
//
// Thread safety: one thread at a time (RpcClient); AsyncCheckpointer hands
// it between threads under a mutex. The zmq context must outlive it.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "common/rpc.h"

namespace gantry::worker {

struct SavedCheckpoint {
  std::string model;
  int64_t version = 0;
};

class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;
  virtual bool enabled() const = 0;
  // Sends one save_checkpoint body (as built by the trainer).
  virtual Result<SavedCheckpoint> Save(const json& body) = 0;
  // The newest checkpoint `job_id` saved under `model` (load_checkpoint's
  // reply), or nullopt when it has none.
  virtual Result<std::optional<json>> LoadLatestOfJob(const std::string& model, const std::string& job_id) = 0;
  // `ref` is vN, an alias or "latest"; model_only leaves out optimizer and
  // trainer tensors.
  virtual Result<json> LoadRef(const std::string& model, const std::string& ref, bool model_only) = 0;
};

class CheckpointClient final : public CheckpointStore {
 public:
  // A large checkpoint on a slow disk takes a while to fsync; the storage
  // service answers only once the version is durable.
  static constexpr std::chrono::seconds kTimeout{60};

  CheckpointClient(zmq::context_t& ctx, const std::string& endpoint);

  bool enabled() const override { return rpc_.has_value(); }
  Result<SavedCheckpoint> Save(const json& body) override;
  Result<std::optional<json>> LoadLatestOfJob(const std::string& model, const std::string& job_id) override;
  Result<json> LoadRef(const std::string& model, const std::string& ref, bool model_only) override;

 private:
  std::optional<RpcClient> rpc_;
};

// {name, dtype, shape, data} of one tensor (a copy of its bytes).
Result<json> TensorToJson(const std::string& name, const torch::Tensor& t);
// The tensors of a load_checkpoint reply by name, validated (dtype, shape
// and byte count agree).
Result<std::map<std::string, torch::Tensor>> TensorsFromJson(const json& tensors);

}  // namespace gantry::worker
