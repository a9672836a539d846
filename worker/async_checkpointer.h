// AsyncCheckpointer: sends checkpoint snapshots to a CheckpointStore, in the
// background (checkpoint.async: true) or inline (false), and keeps a
// snapshot that storage could not take until storage is back.
//
// Protocol of one save:
//   1. The trainer copies its state into a Checkpoint (typed, its tensors
//      contiguous CPU copies): the only part that stalls training.
//   2. Submit() gives the snapshot a request id (random hex, kept on every
//      retry, so storage can deduplicate a retry whose first try it did
//      commit) and makes it the pending snapshot. At most ONE snapshot is
//      pending besides the one in flight. While storage answers, a newer
//      snapshot waits until the pending one is taken (every requested
//      checkpoint is saved; training slows to storage's pace, bounded by
//      the call in flight, whose RPC fails fast when storage dies). Once a
//      try has failed because storage is gone, a newer snapshot replaces
//      the pending one, which is reported as superseded, and Submit()
//      does not wait. Inline Submit() makes one attempt.
//   3. The thread waits for the snapshot's deferred tensors (the drift
//      profile, when its thread was not done at snapshot time) and sends
//      the pending snapshot (CheckpointStore::Save; the JSON body is built
//      there, off the training thread). A failure that
//      says storage is gone (unavailable, deadline_exceeded) keeps the
//      snapshot pending and retries it after a backoff (retry_initial,
//      doubling up to retry_max), unless a newer snapshot replaced it
//      meanwhile. Any other failure is final for that snapshot.
//   4. TakeFinished() hands outcomes back to the trainer's thread, which
//      logs them and reports failures as a metrics event
//      ({"checkpoint_failed": 1}): a failed save is never dropped silently.
//   5. Finish(limit): the final save of a run is Submit() + Finish(); it
//      waits until the store took every pending snapshot, retrying while
//      storage is down, for at most `limit` (by the injected clock); then
//      it stops retrying and fails with unavailable naming storage, so the
//      attempt fails and the coordinator requeues the job.
//
// Time: deadlines and backoffs are read from the injected Clock; waits
// poll it every kTick of real time, so a test advances a ManualClock
// instead of sleeping.
//
// Thread safety: Submit/Flush/Finish/TakeFinished from one thread (the
// trainer's). The store is used only by the background thread (async) or
// by the caller's thread (inline); it must outlive this object, like the
// clock. The destructor stops retrying, finishes the save in flight and a
// pending snapshot never tried, and joins.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "worker/checkpoint_client.h"

namespace gantry::worker {

struct AsyncCheckpointerOptions {
  bool async = true;
  // Backoff between tries of a snapshot while storage is gone: short enough
  // that a restarted storage gets the snapshot within seconds, long enough
  // not to spin on a dead endpoint.
  std::chrono::milliseconds retry_initial{500};
  std::chrono::milliseconds retry_max{4000};
  // null: a SystemClock owned by the checkpointer.
  const Clock* clock = nullptr;
};

class AsyncCheckpointer {
 public:
  // How poll-waits re-read the clock (real time).
  static constexpr std::chrono::milliseconds kTick{20};

  struct Outcome {
    int64_t step = 0;
    Status status;
    SavedCheckpoint saved;
    double seconds = 0;       // time the store took (this try)
    bool will_retry = false;  // failed because storage is gone; kept and retried
  };

  AsyncCheckpointer(CheckpointStore& store, AsyncCheckpointerOptions options);
  AsyncCheckpointer(CheckpointStore& store, bool async);
  ~AsyncCheckpointer();
  AsyncCheckpointer(const AsyncCheckpointer&) = delete;
  AsyncCheckpointer& operator=(const AsyncCheckpointer&) = delete;

  bool async() const { return options_.async; }
  // Inline mode: the first try's status. Async mode: Ok once queued (its
  // outcome arrives through TakeFinished()).
  Status Submit(Checkpoint snapshot);
  // Waits until no save is in flight and no pending snapshot is untried;
  // a snapshot waiting to be retried does not hold it up.
  void Flush();
  // Waits until every snapshot is saved or has failed for good, retrying
  // while storage is gone, for at most `limit`. Ok when nothing is left
  // pending (the outcomes say how each save ended); unavailable naming
  // the storage and the step when the limit passed (retries stop).
  Status Finish(std::chrono::milliseconds limit);
  // Outcomes of saves finished since the last call, oldest first.
  std::vector<Outcome> TakeFinished();

 private:
  struct Pending {
    Checkpoint snapshot;
    int tries = 0;
  };
  // REQUIRES: mu_ held (released during the store call); pending_ set.
  void TryPending(std::unique_lock<std::mutex>& l);
  // REQUIRES: mu_ held. Waits one tick or until notified.
  void WaitTick(std::unique_lock<std::mutex>& l) { cv_.wait_for(l, kTick); }
  bool Due() const;  // REQUIRES: mu_ held
  void Loop();

  CheckpointStore& store_;
  AsyncCheckpointerOptions options_;
  SystemClock system_clock_;
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Pending> pending_;  // GUARDED_BY(mu_): the next snapshot to try
  bool in_flight_ = false;          // GUARDED_BY(mu_): a store call runs
  std::chrono::steady_clock::time_point retry_at_{};  // GUARDED_BY(mu_)
  std::chrono::milliseconds backoff_;                 // GUARDED_BY(mu_)
  Status last_error_;               // GUARDED_BY(mu_): of the last failed try
  bool give_up_ = false;            // GUARDED_BY(mu_): no more retries
  bool stop_ = false;               // GUARDED_BY(mu_)
  std::vector<Outcome> finished_;   // GUARDED_BY(mu_)
  std::thread thread_;              // only in async mode
};

// Failures that mean "storage is gone or not answering": worth a retry.
bool IsStorageGone(const Status& s);

}  // namespace gantry::worker
