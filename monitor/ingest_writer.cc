#include "monitor/ingest_writer.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <iterator>

namespace gantry::monitor {

IngestWriter::IngestWriter(MetricsStore& store, bool threaded) : store_(store), threaded_(threaded) {
  if (!threaded_) return;
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) spdlog::warn("ingest writer: eventfd failed; acks wait for the next tick");
  thread_ = std::thread([this] { Run(); });
}

IngestWriter::~IngestWriter() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  if (event_fd_ >= 0) ::close(event_fd_);
}

void IngestWriter::Submit(IngestBatch batch) {
  if (batch.size() == 0 && batch.seqs.empty()) return;
  std::unique_lock lock(mu_);
  pending_ += batch.size();
  queue_.push_back(std::move(batch));
  if (threaded_) {
    lock.unlock();
    cv_.notify_all();
    return;
  }
  WriteQueued(lock);
}

void IngestWriter::Retry() {
  if (threaded_) return;
  std::unique_lock lock(mu_);
  if (!queue_.empty()) WriteQueued(lock);
}

void IngestWriter::WriteQueued(std::unique_lock<std::mutex>& lock) {
  // One transaction for everything queued: move the batches into one.
  IngestBatch work = std::move(queue_.front());
  queue_.pop_front();
  while (!queue_.empty()) {
    IngestBatch& b = queue_.front();
    work.points.insert(work.points.end(), std::make_move_iterator(b.points.begin()),
                       std::make_move_iterator(b.points.end()));
    work.events.insert(work.events.end(), std::make_move_iterator(b.events.begin()),
                       std::make_move_iterator(b.events.end()));
    work.seqs.insert(work.seqs.end(), std::make_move_iterator(b.seqs.begin()), std::make_move_iterator(b.seqs.end()));
    queue_.pop_front();
  }
  writing_ = true;
  lock.unlock();
  Status st = store_.Write(work.points, work.events);
  lock.lock();
  writing_ = false;
  if (st.ok()) {
    if (!last_error_.ok()) spdlog::info("writing metrics works again");
    last_error_ = Status::Ok();
    pending_ -= work.size();
    if (committed_.empty()) {
      committed_ = std::move(work.seqs);
    } else {
      committed_.insert(committed_.end(), work.seqs.begin(), work.seqs.end());
    }
    if (event_fd_ >= 0) {
      const uint64_t one = 1;
      (void)!::write(event_fd_, &one, sizeof one);
    }
  } else {
    if (last_error_.ok()) {
      spdlog::error("writing metrics failed, keeping {} messages buffered: {}", pending_, st.ToString());
    }
    last_error_ = st;
    queue_.push_front(std::move(work));
  }
  idle_cv_.notify_all();
}

void IngestWriter::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping with nothing left
    WriteQueued(lock);
    if (!last_error_.ok()) {
      if (stop_) return;  // one try at the end, as a clean stop promises
      cv_.wait_for(lock, kRetryInterval, [&] { return stop_; });
    }
  }
}

void IngestWriter::ClearSignal() {
  if (event_fd_ < 0) return;
  uint64_t n;
  (void)!::read(event_fd_, &n, sizeof n);
}

std::vector<SenderSeq> IngestWriter::TakeCommitted() {
  std::lock_guard lock(mu_);
  std::vector<SenderSeq> out;
  out.swap(committed_);
  return out;
}

Status IngestWriter::WaitIdle() {
  std::unique_lock lock(mu_);
  if (!threaded_) {
    if (!queue_.empty()) WriteQueued(lock);
    return last_error_;
  }
  idle_cv_.wait(lock, [&] { return pending_ == 0 || (!writing_ && !last_error_.ok()); });
  return pending_ == 0 ? Status::Ok() : last_error_;
}

size_t IngestWriter::pending() const {
  std::lock_guard lock(mu_);
  return pending_;
}

}  // namespace gantry::monitor
