// Passes a job's checkpoint retention (checkpoint.keep_latest, keep_best,
// best_metric, best_mode) to the storage service, which applies it after
// every save of the model and at once when it arrives (docs/storage.md).
//
// Submit must not wait on storage (the coordinator's loop also runs
// scheduling and heartbeats), so the policy travels asynchronously:
//   1. Coordinator::Submit calls Check(): the policy is validated locally with
//      the rules storage applies (CheckRetention), so a bad policy is still
//      refused synchronously, as invalid_argument, and nothing is queued;
//   2. Apply() queues the set_retention request and returns at once;
//   3. StorageRetention's own thread sends queued requests in order; while
//      storage does not answer (stopped, restarting, unreachable) it retries
//      every retry_interval, so the policy arrives when storage is back.
//      A refusal by storage (it should not happen after step 1) is logged
//      and dropped: the job already runs, and keeps every version.
// Until the policy arrives no version of the model is expired; when it does,
// storage applies it to the versions saved so far.
// Tests use a fake.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/job_spec.h"
#include "common/rpc.h"

namespace gantry::coordinator {

class RetentionSink {
 public:
  virtual ~RetentionSink() = default;
  // Whether `spec`'s retention can be applied; ok when it sets none.
  // Called on the loop thread; must not block.
  virtual Status Check(const JobSpec& spec);
  // Queues `spec`'s retention for its model (no-op when it sets none).
  // Called after Check() succeeded; must not block.
  virtual void Apply(const JobSpec& spec) = 0;
};

// The body of storage's set_retention for `spec`, or null when it sets none.
// keep_latest is at least 1 once any retention is set: the newest version is
// what a restarted job resumes from.
json RetentionRequest(const JobSpec& spec);
// The checks storage's set_retention makes, done locally: keep_best needs a
// best_metric (at most 128 characters, no control characters).
Status CheckRetention(const JobSpec& spec);

class StorageRetention final : public RetentionSink {
 public:
  struct Options {
    // One set_retention call's wait. Longer tolerates a slow storage;
    // shorter notices a dead one sooner. It also bounds the destructor.
    std::chrono::milliseconds call_timeout{5000};
    // Pause between tries while storage does not answer.
    std::chrono::milliseconds retry_interval{1000};
  };

  // Starts the sender thread when `storage_endpoint` is set. `ctx` must
  // outlive this object.
  StorageRetention(zmq::context_t& ctx, std::string storage_endpoint, Options options);
  StorageRetention(zmq::context_t& ctx, std::string storage_endpoint)
      : StorageRetention(ctx, std::move(storage_endpoint), Options{}) {}
  // Stops the thread (waits at most one call_timeout); policies not yet
  // delivered are logged and lost (the job spec still holds them).
  ~StorageRetention() override;
  StorageRetention(const StorageRetention&) = delete;
  StorageRetention& operator=(const StorageRetention&) = delete;

  // Also fails when a policy is set but there is no storage endpoint.
  Status Check(const JobSpec& spec) override;
  void Apply(const JobSpec& spec) override;

  // Requests queued or in flight.
  size_t pending() const;
  int64_t delivered() const;
  int64_t refused() const;

 private:
  void Run();

  zmq::context_t& ctx_;
  const std::string endpoint_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<json> queue_;  // GUARDED_BY(mu_); the front is in flight
  bool stop_ = false;       // GUARDED_BY(mu_)
  int64_t delivered_ = 0;   // GUARDED_BY(mu_)
  int64_t refused_ = 0;     // GUARDED_BY(mu_)
  std::thread thread_;      // last: starts after the members above exist
};

}  // namespace gantry::coordinator
