// Passes a job's checkpoint retention (checkpoint.keep_latest, keep_best,
// best_metric, best_mode) to the storage service at submit, so the policy is
// in force before the job's first save. Storage applies it after every save
// of the model (docs/storage.md). Tests use a fake.
#pragma once

#include <memory>
#include <string>
#include <zmq.hpp>

#include "common/job_spec.h"
#include "common/rpc.h"

namespace gantry::coordinator {

class RetentionSink {
 public:
  virtual ~RetentionSink() = default;
  // Applies `spec`'s retention to its model; ok when the spec sets none.
  virtual Status Apply(const JobSpec& spec) = 0;
};

// The body of storage's set_retention for `spec`, or null when it sets none.
// keep_latest is at least 1 once any retention is set: the newest version is
// what a restarted job resumes from.
json RetentionRequest(const JobSpec& spec);

class StorageRetention final : public RetentionSink {
 public:
  StorageRetention(zmq::context_t& ctx, const std::string& storage_endpoint);
  Status Apply(const JobSpec& spec) override;

 private:
  std::unique_ptr<RpcClient> client_;  // null without a storage endpoint
};

}  // namespace gantry::coordinator
