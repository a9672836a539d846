// Dynamic batcher: requests of N rows each (a fixed number of FP32 elements
// per row) are queued; one worker thread concatenates queued requests into a
// batch of up to max_batch rows, runs the injected BatchFn once, and hands
// each request its slice of the output rows.
//
// Protocol of the worker (one batch at a time):
//   1. Sleep until the queue is non-empty.
//   2. Run a batch at once when the queued rows reach max_batch, when
//      max_delay is 0 (the default: batch what is already queued), or when
//      stopping in drain mode; otherwise wait until the oldest request has
//      waited max_delay on the injected clock, or until more rows arrive.
//   3. Take whole requests from the front while they fit in max_batch
//      (FIFO; a request is never split, so one response is computed by one
//      model version in one forward).
//   4. Run BatchFn outside the lock; check it returned rows × k elements;
//      call each request's DoneFn with its rows (or the batch's error).
// max_delay trades latency for batch size: each request waits at most
// max_delay (plus the batch running ahead of it) for company.
//
// Batches on the submitting loop (Options::run_on_submitting_loop,
// max_delay 0, a Submit given a DeferFn): an HTTP event-loop thread that
// submits a request does not hand it to the worker. It queues it and, unless
// a flush is already scheduled, defers a flush onto its own loop (DeferFn,
// http::DeferOnCurrentLoop), which runs after the requests already readable
// on that loop were read and submitted too. The flush runs one batch of what
// is queued (step 3) on that thread and, if requests remain, defers itself
// again, so the loop reads its sockets between batches. At concurrency 1
// this is the request alone with no thread hand-off; under load it is the
// requests that arrived together, with no wake-ups between threads. Batches
// still run one at a time (the worker and a flush never overlap). A flush
// that cannot run (the loop stopped first) hands the queue to the worker.
// Without a DeferFn (not on a loop) the worker runs the request as before.
//
// Decisions:
//   - A request with more rows than max_batch is refused (invalid_argument,
//     400) rather than split across batches: splitting would let one response
//     mix model versions across a hot reload. The codec's max_rows should be
//     set to max_batch so the client learns it from a 413 first.
//   - The queue is bounded (max_queued_rows and max_queued_requests); a
//     Submit that would pass either bound is answered resource_exhausted
//     (HTTP 503) at once, so overload shows as fast refusals, not latency.
//   - Stop(kDrain) runs everything queued, then stops; Stop(kFail) answers the
//     queued requests unavailable (HTTP 503). The batch already running
//     finishes either way. The destructor is Stop(kFail).
//
// Time: deadlines are read from the injected Clock (Options::clock). The
// worker waits on a condition variable for the remaining time; waking early
// only re-checks, so a test drives max_delay with a ManualClock: Advance()
// then Notify(). stats().waits counts the worker's timed waits, so a test can
// tell the worker is parked without sleeping.
//
// Thread safety: Submit, Stop, Notify and stats may be called from any thread.
// DoneFn runs on the worker thread (or on the thread calling Stop(kFail) for
// requests failed there, or on the submitting loop's thread for a batch
// flushed there), never under the batcher's lock; it may Submit again but
// must not call Stop. An exception from it is swallowed (the worker keeps
// serving); it should not throw. BatchFn runs on the worker thread or a
// submitting loop's thread, one batch at a time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace gantry::serving {

// The concatenated rows of one batch, row-major: rows × row_size floats.
struct BatchInput {
  const std::vector<float>& data;
  size_t rows = 0;
  size_t row_size = 0;
};

// BatchFn's answer: rows × k floats (k = data.size() / rows, the output row
// size) and the version of the model that computed them.
struct BatchOutput {
  std::vector<float> data;
  std::string model_version;
};

using BatchFn = std::function<Result<BatchOutput>(const BatchInput&)>;

// One request's share of a batch.
struct RowsResult {
  std::vector<float> data;  // rows × row_size
  size_t rows = 0;
  size_t row_size = 0;  // output elements per row
  std::string model_version;
  size_t batch_rows = 0;  // rows in the batch that computed it
};

using DoneFn = std::function<void(Result<RowsResult>)>;

// Queues `fn` to run later on the calling thread's event loop, after what is
// already ready there; false (`fn` dropped unrun) when the thread has none.
// http::DeferOnCurrentLoop is one.
using DeferFn = bool (*)(std::function<void()>);

struct BatcherOptions {
  size_t row_size = 1;   // FP32 elements per input row (784 for Fashion-MNIST)
  size_t max_batch = 64; // rows per BatchFn call
  // How long the oldest queued request may wait for more rows; 0 = never.
  std::chrono::steady_clock::duration max_delay{0};
  // Queue bounds; a Submit passing either is refused. 0 = 16 × max_batch
  // rows, at least 1024 (so max_batch 1 still queues one request from each
  // of many clients instead of refusing all but 16).
  size_t max_queued_rows = 0;
  size_t max_queued_requests = 4096;
  const Clock* clock = nullptr;  // not owned; nullptr = the system clock
  // Batches on the submitting loop (above). Off by default: the caller must
  // accept DoneFn and BatchFn running on its loop's thread.
  bool run_on_submitting_loop = false;
};

enum class StopMode { kDrain, kFail };

class Batcher {
 public:
  struct Stats {
    uint64_t batches = 0;
    uint64_t rows = 0;            // rows run
    uint64_t requests = 0;        // requests answered (ok or failed by BatchFn)
    uint64_t failed_batches = 0;  // BatchFn errors
    uint64_t rejected = 0;        // refused at Submit (full, too big, stopped)
    uint64_t waits = 0;           // timed waits for max_delay
    uint64_t loop_batches = 0;    // batches flushed on a submitting loop
    size_t queued_rows = 0;
    size_t queued_requests = 0;
  };

  // Starts the worker thread. options.max_batch and row_size must be > 0.
  Batcher(BatcherOptions options, BatchFn fn);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues `rows` (a multiple of row_size floats, at least one row). On ok,
  // `done` is called exactly once later; on error it is never called:
  // invalid_argument (bad size, more rows than max_batch), resource_exhausted
  // (queue full), unavailable (stopping).
  Status Submit(std::vector<float> rows, DoneFn done) { return Submit(std::move(rows), std::move(done), nullptr); }
  // The same from an event-loop thread: with run_on_submitting_loop the batch
  // is flushed on that loop through `defer` (see the header comment).
  Status Submit(std::vector<float> rows, DoneFn done, DeferFn defer);
  // The same, answered through a future (errors at Submit included).
  std::future<Result<RowsResult>> Submit(std::vector<float> rows);

  // Stops the worker (see the header comment); idempotent. Must not be called
  // from a DoneFn or the BatchFn.
  void Stop(StopMode mode = StopMode::kDrain);
  // Makes the worker re-read the clock (after a ManualClock moved).
  void Notify();
  Stats stats() const;
  // Whether Stop has begun (Submit answers unavailable from then on).
  bool stopping() const;
  const BatcherOptions& options() const { return options_; }

 private:
  struct Pending {
    std::vector<float> rows;
    size_t n = 0;
    DoneFn done;
    std::chrono::steady_clock::time_point enqueued;
  };

  struct Anchor;
  class FlushTask;

  void Run();
  // Defers a flush through `defer`; false if it could not (the flush was
  // dropped, which handed the queue to the worker). REQUIRES: mu_ not held.
  bool ScheduleFlush(DeferFn defer);
  // The deferred flush: one batch of what is queued, then again if more is.
  void Flush(DeferFn defer);
  // A scheduled flush that will never run: the worker takes the queue.
  void FlushDropped();
  // Runs one batch of `batch` (already removed from the queue).
  void RunBatch(std::vector<Pending>& batch);
  // REQUIRES: mu_ held. Removes the front requests that fit in max_batch.
  std::vector<Pending> TakeBatchLocked();

  BatcherOptions options_;
  BatchFn fn_;
  SystemClock system_clock_;
  const Clock* clock_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // GUARDED_BY(mu_)
  size_t queued_rows_ = 0;     // GUARDED_BY(mu_)
  bool stopping_ = false;      // GUARDED_BY(mu_)
  bool busy_ = false;          // a batch is running. GUARDED_BY(mu_)
  bool flush_scheduled_ = false;  // a loop flush is deferred. GUARDED_BY(mu_)
  // Lets a deferred flush outliving the batcher find it gone.
  std::shared_ptr<Anchor> anchor_;
  StopMode stop_mode_ = StopMode::kDrain;  // GUARDED_BY(mu_)
  Stats stats_;                // GUARDED_BY(mu_)

  std::mutex stop_mu_;  // serialises Stop (the join)
  std::thread worker_;
};

}  // namespace gantry::serving
