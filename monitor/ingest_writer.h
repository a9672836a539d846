// IngestWriter: writes the batches of the ingest buffer to a MetricsStore,
// either on the caller's thread (inline) or on a thread of its own, and
// reports which sequenced points are committed so acks follow commits.
//
// Protocol (threaded):
//   1. Submit() queues a batch (never blocks on SQLite);
//   2. the writer thread takes every queued batch and writes them in one
//      transaction (MetricsStore::Write), so a burst costs one commit;
//   3. after the commit it moves their seqs to the committed list and makes
//      fd() readable; the owner's poll loop calls TakeCommitted() and only
//      then acks them (acked = committed: a kill -9 loses nothing acked);
//   4. a failed write keeps the batches, in order, at the head of the queue
//      and is retried every kRetryInterval; WaitIdle() reports the error.
// Inline, step 2 runs inside Submit() and Retry(), and fd() is -1.
//
// Ownership: `store` must outlive the writer; in threaded mode only the
// writer thread touches it. Thread safety: the public functions are called
// from one owner thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "monitor/ingest_acks.h"
#include "monitor/ingest_buffer.h"
#include "monitor/metrics_store.h"

namespace gantry::monitor {

class IngestWriter {
 public:
  // How long a failing write waits before the next try (threaded).
  static constexpr std::chrono::milliseconds kRetryInterval{100};

  IngestWriter(MetricsStore& store, bool threaded);
  // Threaded: writes what is queued (one try), then stops the thread.
  ~IngestWriter();
  IngestWriter(const IngestWriter&) = delete;
  IngestWriter& operator=(const IngestWriter&) = delete;

  void Submit(IngestBatch batch);
  // Inline: writes a batch that failed before. Threaded: nothing to do.
  void Retry();
  // The seqs of the batches committed since the last call, oldest first.
  std::vector<SenderSeq> TakeCommitted();
  // Blocks until every submitted batch is committed (Ok), or a write failed
  // on its latest try (that error).
  Status WaitIdle();
  // Messages submitted, not yet committed.
  size_t pending() const;
  // Readable after a commit (threaded); -1 inline. ClearSignal() makes it
  // unreadable again (call it before TakeCommitted()).
  int fd() const { return event_fd_; }
  void ClearSignal();

 private:
  void Run();
  // Writes every queued batch in one transaction. REQUIRES: mu_ held by
  // `lock` (released while SQLite runs).
  void WriteQueued(std::unique_lock<std::mutex>& lock);

  MetricsStore& store_;
  const bool threaded_;
  int event_fd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // the writer waits for work or stop
  std::condition_variable idle_cv_;  // WaitIdle waits for a commit or a failure
  std::deque<IngestBatch> queue_;    // GUARDED_BY(mu_)
  size_t pending_ = 0;               // GUARDED_BY(mu_): messages in queue_ and in writing
  bool writing_ = false;             // GUARDED_BY(mu_)
  Status last_error_;                // GUARDED_BY(mu_): of the latest try; Ok after a success
  std::vector<SenderSeq> committed_;  // GUARDED_BY(mu_)
  bool stop_ = false;                // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace gantry::monitor
