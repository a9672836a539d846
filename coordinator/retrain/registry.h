// ModelRegistry: what a retraining schedule needs of the storage service's
// registry (docs/protocol.md, "Storage"): resolve MODEL@alias, move an alias
// (set_alias: the same call `gantry ckpt alias set` makes, so every alias
// follower, e.g. a deployment's reloader, sees the promotion on the registry
// feed), and read the version a run's job saved with its evaluation scores.
//
// StorageRegistry speaks to storage over RPC with a short timeout: it is
// called from the coordinator's loop, a few times per run, and a storage
// that does not answer fails the call (the retrainer retries on a later
// tick) rather than holding the loop. Tests use a fake.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "common/rpc.h"

namespace gantry::coordinator {

// One stored version as the gate reads it.
struct SavedVersion {
  int64_t version = 0;
  std::map<std::string, double> metrics;  // as saved (test_accuracy, champion_test_accuracy, ...)
  std::string data_fingerprint;
};

class ModelRegistry {
 public:
  virtual ~ModelRegistry() = default;
  // The version MODEL@alias names; nullopt when the model or alias does not exist.
  virtual Result<std::optional<int64_t>> ResolveAlias(const std::string& model, const std::string& alias) = 0;
  virtual Status SetAlias(const std::string& model, const std::string& alias, int64_t version) = 0;
  // The newest version of `model` saved by `job_id`; nullopt when it saved none.
  virtual Result<std::optional<SavedVersion>> LatestOfJob(const std::string& model, const std::string& job_id) = 0;
};

class StorageRegistry final : public ModelRegistry {
 public:
  // `ctx` outlives this. An empty endpoint fails every call with
  // failed_precondition (a coordinator started without --storage).
  StorageRegistry(zmq::context_t& ctx, std::string endpoint,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

  Result<std::optional<int64_t>> ResolveAlias(const std::string& model, const std::string& alias) override;
  Status SetAlias(const std::string& model, const std::string& alias, int64_t version) override;
  Result<std::optional<SavedVersion>> LatestOfJob(const std::string& model, const std::string& job_id) override;

 private:
  Result<json> Call(const std::string& type, const json& body);

  zmq::context_t& ctx_;
  const std::string endpoint_;
  const std::chrono::milliseconds timeout_;
  std::optional<RpcClient> client_;
};

}  // namespace gantry::coordinator
