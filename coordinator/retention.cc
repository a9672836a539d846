#include "coordinator/retention.h"

#include <algorithm>

namespace gantry::coordinator {

json RetentionRequest(const JobSpec& spec) {
  const CheckpointSpec& c = spec.checkpoint;
  if (c.keep_latest == 0 && c.keep_best == 0) return nullptr;
  return {{"model", c.model},
          {"keep_latest", std::max<int64_t>(1, c.keep_latest)},
          {"keep_best", c.keep_best},
          {"metric", c.best_metric},
          {"mode", c.best_mode}};
}

StorageRetention::StorageRetention(zmq::context_t& ctx, const std::string& storage_endpoint) {
  if (!storage_endpoint.empty()) {
    client_ = std::make_unique<RpcClient>(ctx, storage_endpoint, std::chrono::seconds(10));
  }
}

Status StorageRetention::Apply(const JobSpec& spec) {
  json body = RetentionRequest(spec);
  if (body.is_null()) return Status::Ok();
  if (!client_) return Status::FailedPrecondition("checkpoint.keep_*: the coordinator has no storage endpoint");
  auto r = client_->Call("set_retention", body);
  if (!r.ok()) return r.status().WithContext("job spec: checkpoint.keep_latest/keep_best: storage refused the policy");
  return Status::Ok();
}

}  // namespace gantry::coordinator
