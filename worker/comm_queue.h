// CommQueue: one background thread that runs communication jobs in the
// order they were queued (a "communication stream" for backends whose calls
// block, such as MPI). A job's Status is delivered through the Work that
// Push() returns.
//
// Why a thread: MPI_Allreduce blocks its caller; running it here lets
// backward keep computing while a finished bucket is reduced. Why one: the
// collectives of a group must be issued in one global order, which a FIFO
// with a single consumer keeps by construction.
//
// Ownership: the destructor finishes every queued job, then joins.
// Thread safety: Push() may be called from any thread; jobs run on the
// queue's thread only.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "worker/communicator.h"

namespace gantry::worker {

class CommQueue {
 public:
  CommQueue();
  ~CommQueue();
  CommQueue(const CommQueue&) = delete;
  CommQueue& operator=(const CommQueue&) = delete;

  std::unique_ptr<Work> Push(std::function<Status()> job);
  // Runs `job` on the queue's thread after everything queued, and waits.
  Status Run(std::function<Status()> job) { return Push(std::move(job))->Wait(); }

 private:
  struct State;
  class QueueWork;
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::function<Status()>, std::shared_ptr<State>>> jobs_;  // GUARDED_BY(mu_)
  bool stop_ = false;                                                             // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace gantry::worker
