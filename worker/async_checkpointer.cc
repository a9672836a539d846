#include "worker/async_checkpointer.h"

#include <chrono>

namespace gantry::worker {

AsyncCheckpointer::AsyncCheckpointer(CheckpointStore& store, bool async) : store_(store), async_(async) {
  if (async_) thread_ = std::thread([this] { Loop(); });
}

AsyncCheckpointer::~AsyncCheckpointer() {
  if (!async_) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

AsyncCheckpointer::Outcome AsyncCheckpointer::SaveNow(Checkpoint& snapshot) {
  const auto t0 = std::chrono::steady_clock::now();
  Outcome out;
  out.step = snapshot.step;
  auto saved = store_.Save(snapshot);
  if (saved.ok()) {
    out.saved = *saved;
  } else {
    out.status = saved.status();
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  snapshot.tensors.clear();  // free the copies now, not at the next save
  return out;
}

Status AsyncCheckpointer::Submit(Checkpoint snapshot) {
  if (!async_) {
    Outcome out = SaveNow(snapshot);
    Status st = out.status;
    std::lock_guard<std::mutex> l(mu_);
    finished_.push_back(std::move(out));
    return st;
  }
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !busy_; });
  pending_ = std::move(snapshot);
  busy_ = true;
  l.unlock();
  cv_.notify_all();
  return Status::Ok();
}

void AsyncCheckpointer::Flush() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !busy_; });
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
    cv_.wait(l, [&] { return stop_ || pending_.has_value(); });
    if (!pending_) return;  // stopping with nothing in flight
    Checkpoint snap = std::move(*pending_);
    pending_.reset();
    l.unlock();
    Outcome out = SaveNow(snap);
    l.lock();
    finished_.push_back(std::move(out));
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace gantry::worker
