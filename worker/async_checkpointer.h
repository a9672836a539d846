// AsyncCheckpointer: sends checkpoint snapshots to a CheckpointStore, in the
// background (checkpoint.async: true) or inline (false).
//
// Protocol of one save:
//   1. The trainer copies its state into a Checkpoint (typed, its tensors
//      contiguous CPU copies): the only part that stalls training.
//   2. Submit() first waits for the previous save, if one is in flight (at
//      most one per job: a slow store makes training wait rather than pile
//      up snapshots in memory), then hands the snapshot to the background
//      thread and returns. Inline mode sends it before returning.
//   3. The thread encodes and sends it (CheckpointStore::Save; the JSON
//      body is built there, off the training thread) and records the
//      outcome. TakeFinished() hands
//      outcomes back to the trainer's thread, which logs them and reports a
//      failure as a metrics event ({"checkpoint_failed": 1}): a failed save
//      is never dropped silently.
//   4. Flush() waits for the save in flight: the final save of a run is
//      Submit() + Flush(), complete before the process exits.
//
// Thread safety: Submit/Flush/TakeFinished from one thread (the trainer's).
// The store is used only by the background thread while a save is in
// flight, and by the caller's thread only inside Submit() in inline mode;
// the store must outlive this object. The destructor flushes and joins.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "worker/checkpoint_client.h"

namespace gantry::worker {

class AsyncCheckpointer {
 public:
  struct Outcome {
    int64_t step = 0;
    Status status;
    SavedCheckpoint saved;
    double seconds = 0;  // time the store took
  };

  AsyncCheckpointer(CheckpointStore& store, bool async);
  ~AsyncCheckpointer();
  AsyncCheckpointer(const AsyncCheckpointer&) = delete;
  AsyncCheckpointer& operator=(const AsyncCheckpointer&) = delete;

  bool async() const { return async_; }
  // Inline mode: the save's status. Async mode: Ok once queued (its outcome
  // arrives through TakeFinished()).
  Status Submit(Checkpoint snapshot);
  // Waits until no save is in flight.
  void Flush();
  // Outcomes of saves finished since the last call, oldest first.
  std::vector<Outcome> TakeFinished();

 private:
  void Loop();
  Outcome SaveNow(Checkpoint& snapshot);

  CheckpointStore& store_;
  const bool async_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Checkpoint> pending_;  // GUARDED_BY(mu_): handed to the thread
  bool busy_ = false;                // GUARDED_BY(mu_): a save is in flight
  bool stop_ = false;                // GUARDED_BY(mu_)
  std::vector<Outcome> finished_;    // GUARDED_BY(mu_)
  std::thread thread_;               // only in async mode
};

}  // namespace gantry::worker
