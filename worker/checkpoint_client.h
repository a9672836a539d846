// CheckpointStore: how a rank saves and reads back checkpoints; and
// CheckpointClient, its implementation over the storage service's RPC API.
//
// Requests (docs/protocol.md, "Storage"; docs/worker.md, "Checkpoints"):
//   save_checkpoint {model, job_id, attempt, step, epoch, metrics, meta,
//                    request_id?, trainer_state, optimizer_state, parent_model?,
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
// Save() takes a typed Checkpoint and encodes the save_checkpoint body here;
// loads return a Checkpoint, the reply's JSON decoded here
// (CheckpointFromReply). Nowhere else on the worker is a checkpoint JSON.
// The network itself is built and filled by gantry::model
// (model/checkpoint_model.h) from the manifest and tensors decoded here.
//
// An empty endpoint makes a disabled client: Save() succeeds and sends
// nothing, loads find nothing (ranks > 0, tests, benchmarks).
//
// Thread safety: one thread at a time (RpcClient); AsyncCheckpointer hands
// it between threads under a mutex. The zmq context must outlive it.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/rpc.h"
#include "model/checkpoint_model.h"
#include "model/tensor_wire.h"

namespace gantry::worker {

struct SavedCheckpoint {
  std::string model;
  int64_t version = 0;
};

// Where training stood when a checkpoint was saved (trainer_state; older
// stores keep it in meta.trainer_state). What exact resume needs.
struct TrainerStateRecord {
  int64_t format = 0;
  int64_t step = 0;
  int64_t epoch = 0;
  int64_t epoch_offset = 0;  // index into the epoch's permutation
  int64_t samples_seen = 0;
  int64_t world_size = 0;    // 0: not recorded
  int64_t batch_size = 0;
  std::optional<uint64_t> seed;
  bool preempted = false;
};

// How the optimizer was configured (optimizer_state); its tensors travel
// as optimizer/... tensors.
struct OptimizerRecord {
  std::string name;
  double lr = 0;
  double momentum = 0;
  double weight_decay = 0;
};

// One checkpoint: what the trainer saves (version 0: storage assigns it) and
// what load_checkpoint returns. The same struct crosses the wire both ways;
// it is JSON only inside checkpoint_client.cc.
struct Checkpoint {
  std::string model;
  int64_t version = 0;  // 0 when saving
  std::string job_id;
  int64_t attempt = 0;
  int64_t step = 0;
  int64_t epoch = 0;
  std::map<std::string, double> metrics;  // numeric metrics only: what was measured
  std::string job_name;                   // meta.job_name
  int64_t world_size = 0;                 // meta.world_size
  model::ModelManifest manifest;          // meta: how the network was built
  std::optional<TrainerStateRecord> trainer_state;  // absent: cannot resume exactly
  std::optional<OptimizerRecord> optimizer;         // optimizer_state; absent: not recorded
  std::string parent_model;               // lineage; empty with parent_version 0: none
  int64_t parent_version = 0;
  std::string data_fingerprint;
  // Client request id (random hex; the same on every retry of one
  // snapshot), sent as request_id so storage can deduplicate a retried
  // save; empty: none sent. Not part of a loaded checkpoint.
  std::string request_id;
  // Weights, plus optimizer/ and trainer/ state, by name. When saving, each
  // is a contiguous CPU copy taken at snapshot time (training goes on while
  // the background thread encodes and sends them).
  model::TensorMap tensors;
  // Tensors still being computed when the snapshot was taken (the drift
  // profile's thread): the saver waits for each and adds it, if defined,
  // to `tensors` before sending, off the training thread. Saving only.
  std::map<std::string, std::shared_future<torch::Tensor>> deferred;

  // "model@vN", for messages.
  std::string Source() const { return model + "@v" + std::to_string(version); }
};

class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;
  virtual bool enabled() const = 0;
  // Saves one checkpoint (its version is ignored: the store assigns one).
  virtual Result<SavedCheckpoint> Save(const Checkpoint& checkpoint) = 0;
  // The newest checkpoint `job_id` saved under `model`, or nullopt when it
  // has none.
  virtual Result<std::optional<Checkpoint>> LoadLatestOfJob(const std::string& model,
                                                                  const std::string& job_id) = 0;
  // `ref` is vN, an alias or "latest"; model_only leaves out optimizer and
  // trainer tensors.
  virtual Result<Checkpoint> LoadRef(const std::string& model, const std::string& ref, bool model_only) = 0;
};

class CheckpointClient final : public CheckpointStore {
 public:
  // A large checkpoint on a slow disk takes a while to fsync; the storage
  // service answers only once the version is durable.
  static constexpr std::chrono::seconds kTimeout{60};
  // Save() first pings storage with this timeout, so a dead storage costs
  // a saving thread seconds rather than kTimeout.
  static constexpr std::chrono::seconds kProbeTimeout{2};
  // A save call waits kSaveBase plus the checkpoint's bytes at
  // kSaveBytesPerSecond (a slow disk's fsync), at most kTimeout: a storage
  // killed mid-save costs a small checkpoint seconds, not a minute.
  static constexpr std::chrono::seconds kSaveBase{10};
  static constexpr double kSaveBytesPerSecond = 25e6;

  // use_inbox: save through storage's inbox (the data plane) when storage
  // offers one; false always sends the state in one save_checkpoint frame.
  CheckpointClient(zmq::context_t& ctx, const std::string& endpoint, bool use_inbox = true);
  // Whether the last save wrote its bytes straight into the inbox.
  bool last_save_same_host() const { return last_save_same_host_; }

  bool enabled() const override { return rpc_.has_value(); }
  Result<SavedCheckpoint> Save(const Checkpoint& checkpoint) override;
  Result<std::optional<Checkpoint>> LoadLatestOfJob(const std::string& model,
                                                          const std::string& job_id) override;
  Result<Checkpoint> LoadRef(const std::string& model, const std::string& ref, bool model_only) override;

 private:
  std::optional<RpcClient> rpc_;
  bool use_inbox_ = true;
  bool last_save_same_host_ = false;
};

// The message codec (the only place a checkpoint is JSON on the worker).
//
// The wire name of a tensor dtype (float32, float64, int64, int32, uint8),
// and the tensors of a load_checkpoint reply by name, validated (dtype, shape
// and byte count agree): model/tensor_wire.h, shared with gantry-serve.
using model::DtypeName;
using model::TensorsFromJson;
// A load_checkpoint reply (or a save_checkpoint body with its version)
// decoded and checked (lineage from lineage {parent, data_fingerprint} or
// from the body's parent_model/parent_version/data_fingerprint): field types, tensors, trainer_state. Missing meta
// fields stay empty (older checkpoints); a field of the wrong type is
// Corruption naming the field.
Result<Checkpoint> CheckpointFromReply(const json& reply);
// A checkpoint as MessagePack bytes (its save_checkpoint body plus version),
// for handing a loaded checkpoint to the other ranks, and back.
Result<std::string> EncodeCheckpoint(const Checkpoint& ckpt);
Result<Checkpoint> DecodeCheckpoint(std::string_view bytes);

}  // namespace gantry::worker
