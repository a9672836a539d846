#include "coordinator/retention.h"

#include <spdlog/spdlog.h>

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

Status CheckRetention(const JobSpec& spec) {
  const CheckpointSpec& c = spec.checkpoint;
  if (c.keep_latest == 0 && c.keep_best == 0) return Status::Ok();
  if (c.keep_best > 0 && c.best_metric.empty()) {
    return Status::InvalidArgument(
        "job spec: checkpoint.keep_best needs checkpoint.best_metric (e.g. best_metric: test_loss)");
  }
  if (c.best_metric.size() > 128) {
    return Status::InvalidArgument("job spec: checkpoint.best_metric is longer than 128 characters");
  }
  for (unsigned char ch : c.best_metric) {
    if (ch < 0x20 || ch == 0x7f) {
      return Status::InvalidArgument("job spec: checkpoint.best_metric holds a control character");
    }
  }
  if (c.best_mode != "min" && c.best_mode != "max") {
    return Status::InvalidArgument("job spec: checkpoint.best_mode must be min or max (got '" + c.best_mode + "')");
  }
  return Status::Ok();
}

Status RetentionSink::Check(const JobSpec& spec) { return CheckRetention(spec); }

StorageRetention::StorageRetention(zmq::context_t& ctx, std::string storage_endpoint, Options options)
    : ctx_(ctx), endpoint_(std::move(storage_endpoint)), options_(options) {
  if (!endpoint_.empty()) thread_ = std::thread([this] { Run(); });
}

StorageRetention::~StorageRetention() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (const json& body : queue_) {
    spdlog::warn("retention policy for model '{}' not delivered: storage did not answer before shutdown",
                 body.value("model", ""));
  }
}

Status StorageRetention::Check(const JobSpec& spec) {
  GANTRY_RETURN_IF_ERROR(CheckRetention(spec));
  if (endpoint_.empty() && !RetentionRequest(spec).is_null()) {
    return Status::FailedPrecondition("checkpoint.keep_*: the coordinator has no storage endpoint");
  }
  return Status::Ok();
}

void StorageRetention::Apply(const JobSpec& spec) {
  json body = RetentionRequest(spec);
  if (body.is_null() || endpoint_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(body));
  }
  cv_.notify_all();
}

size_t StorageRetention::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

int64_t StorageRetention::delivered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delivered_;
}

int64_t StorageRetention::refused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

void StorageRetention::Run() {
  std::unique_ptr<RpcClient> client;
  try {
    client = std::make_unique<RpcClient>(ctx_, endpoint_, options_.call_timeout);
  } catch (const std::exception& e) {
    spdlog::error("retention disabled: cannot connect to storage at {}: {}", endpoint_, e.what());
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    json body = queue_.front();  // stays queued (pending) while in flight
    lock.unlock();
    auto r = client->Call("set_retention", body);  // only the outcome matters
    lock.lock();
    const StatusCode code = r.ok() ? StatusCode::kOk : r.status().code();
    if (code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded) {
      spdlog::warn("retention for model '{}': storage did not answer ({}); retrying", body.value("model", ""),
                   r.status().message());
      cv_.wait_for(lock, options_.retry_interval, [this] { return stop_; });
      continue;
    }
    queue_.pop_front();
    if (r.ok()) {
      ++delivered_;
      spdlog::info("retention for model '{}' is in force", body.value("model", ""));
    } else {
      ++refused_;
      spdlog::error("storage refused the retention policy for model '{}': {} (every version is kept)",
                    body.value("model", ""), r.status().ToString());
    }
  }
}

}  // namespace gantry::coordinator
