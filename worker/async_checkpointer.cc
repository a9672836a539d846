#include "worker/async_checkpointer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/ids.h"

namespace gantry::worker {
namespace {

// Waits for the snapshot's deferred tensors and adds those that came out
// defined (an undefined one, e.g. a profile that could not be built, is
// left out, as it would have been at snapshot time).
void ResolveDeferred(Checkpoint& c) {
  for (auto& [name, future] : c.deferred) {
    try {
      torch::Tensor t = future.get();
      if (t.defined()) c.tensors[name] = std::move(t);
    } catch (const std::exception& e) {
      spdlog::warn("checkpoint at step {}: {} left out: {}", c.step, name, e.what());
    }
  }
  c.deferred.clear();
}

}  // namespace

bool IsStorageGone(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

AsyncCheckpointer::AsyncCheckpointer(CheckpointStore& store, bool async)
    : AsyncCheckpointer(store, AsyncCheckpointerOptions{.async = async}) {}

AsyncCheckpointer::AsyncCheckpointer(CheckpointStore& store, AsyncCheckpointerOptions options)
    : store_(store), options_(options), clock_(options.clock ? *options.clock : system_clock_),
      backoff_(options.retry_initial) {
  if (options_.async) thread_ = std::thread([this] { Loop(); });
}

AsyncCheckpointer::~AsyncCheckpointer() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    give_up_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool AsyncCheckpointer::Due() const {
  return pending_ && (pending_->tries == 0 || (!give_up_ && clock_.Now() >= retry_at_));
}

void AsyncCheckpointer::TryPending(std::unique_lock<std::mutex>& l) {
  Pending p = std::move(*pending_);
  pending_.reset();
  in_flight_ = true;
  ++p.tries;
  l.unlock();
  cv_.notify_all();  // a Submit() waiting for the queued snapshot to be taken
  ResolveDeferred(p.snapshot);
  const auto t0 = std::chrono::steady_clock::now();
  auto saved = store_.Save(p.snapshot);
  Outcome out;
  out.step = p.snapshot.step;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  l.lock();
  in_flight_ = false;
  if (saved.ok()) {
    out.saved = *saved;
    backoff_ = options_.retry_initial;
    retry_at_ = {};
    last_error_ = Status::Ok();
  } else {
    out.status = saved.status();
    last_error_ = out.status;
    if (IsStorageGone(out.status) && !give_up_ && !pending_) {
      // Kept for a retry once storage is back (the same request id).
      out.will_retry = true;
      retry_at_ = clock_.Now() + backoff_;
      backoff_ = std::min(backoff_ * 2, options_.retry_max);
      const bool first = p.tries == 1;
      pending_ = std::move(p);
      if (!first) {  // already reported as retrying once
        cv_.notify_all();
        return;
      }
    } else if (IsStorageGone(out.status) && pending_) {
      out.status = Status::Aborted("checkpoint of step " + std::to_string(out.step) +
                                   " superseded by step " + std::to_string(pending_->snapshot.step) +
                                   " while storage was unavailable (" + out.status.message() + ")");
      retry_at_ = clock_.Now() + backoff_;
    }
  }
  finished_.push_back(std::move(out));
  cv_.notify_all();
}

Status AsyncCheckpointer::Submit(Checkpoint snapshot) {
  if (snapshot.request_id.empty()) snapshot.request_id = NewRequestId();
  std::unique_lock<std::mutex> l(mu_);
  // While storage answers, every snapshot is saved: a newer one waits until
  // the queued one is taken (backpressure, bounded by the call in flight,
  // whose RPC fails fast when storage dies). Only a snapshot kept because
  // storage is gone is replaced by a newer one.
  if (options_.async) {
    cv_.wait(l, [&] { return !pending_ || pending_->tries > 0 || !last_error_.ok() || give_up_; });
  }
  if (pending_) {
    Outcome dropped;
    dropped.step = pending_->snapshot.step;
    dropped.status = Status::Aborted("checkpoint of step " + std::to_string(dropped.step) + " superseded by step " +
                                     std::to_string(snapshot.step) + " before storage took it" +
                                     (last_error_.ok() ? "" : " (" + last_error_.message() + ")"));
    finished_.push_back(std::move(dropped));
  }
  pending_ = Pending{std::move(snapshot), 0};
  if (options_.async) {
    l.unlock();
    cv_.notify_all();
    return Status::Ok();
  }
  TryPending(l);
  return finished_.empty() ? Status::Ok() : finished_.back().status;
}

void AsyncCheckpointer::Flush() {
  std::unique_lock<std::mutex> l(mu_);
  if (!options_.async) return;
  cv_.wait(l, [&] { return !in_flight_ && (!pending_ || pending_->tries > 0); });
}

Status AsyncCheckpointer::Finish(std::chrono::milliseconds limit) {
  const auto deadline = clock_.Now() + limit;
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    if (!pending_ && !in_flight_) return Status::Ok();
    if (!in_flight_ && clock_.Now() >= deadline) break;
    if (!options_.async && pending_ && Due()) {
      TryPending(l);
      continue;
    }
    WaitTick(l);
  }
  // The limit passed with a snapshot still pending: stop retrying it.
  give_up_ = true;
  const int64_t step = pending_->snapshot.step;
  Outcome out;
  out.step = step;
  out.status = Status::Unavailable(
      "storage did not take the checkpoint of step " + std::to_string(step) + " within " +
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(limit).count()) +
      " s (checkpoint.final_save_timeout); last error: " + last_error_.message());
  pending_.reset();
  finished_.push_back(out);
  cv_.notify_all();
  return out.status;
}

std::vector<AsyncCheckpointer::Outcome> AsyncCheckpointer::TakeFinished() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Outcome> out;
  out.swap(finished_);
  return out;
}

void AsyncCheckpointer::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    if (Due()) {
      TryPending(l);
      continue;
    }
    if (stop_) return;  // nothing left that may still be tried
    if (pending_) {
      WaitTick(l);  // a retry waits for the clock
    } else {
      cv_.wait(l, [&] { return stop_ || pending_.has_value(); });
    }
  }
}

}  // namespace gantry::worker
