// HeartbeatSender: tells the coordinator, every `period`, which step this
// rank is at, so that a hang (no heartbeat, or a step that stops moving)
// can be told from slow progress.
//
// Each beat is one RpcClient request on the coordinator's API:
//   heartbeat {job_id, attempt, rank, step, time}   (time: unix seconds)
// sent from a background thread: the first at once, then every `period`.
// Failures (coordinator down, no handler yet, timeout) are ignored: a
// heartbeat is advice, and training must never wait for it. Each call's
// timeout is bounded by the period, so a dead coordinator cannot delay
// later beats by more than one period.
// An empty endpoint makes a disabled sender (no thread).
//
// Thread safety: SetStep() from any thread; the destructor stops the
// thread promptly (it waits on a condition variable, not a sleep). The zmq
// context must outlive the sender.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/rpc.h"

namespace gantry::worker {

struct HeartbeatSource {
  std::string job_id;
  int attempt = 1;
  int rank = 0;
};

class HeartbeatSender {
 public:
  HeartbeatSender(zmq::context_t& ctx, std::string endpoint, HeartbeatSource source,
                  std::chrono::milliseconds period, const Clock& clock);
  ~HeartbeatSender();
  HeartbeatSender(const HeartbeatSender&) = delete;
  HeartbeatSender& operator=(const HeartbeatSender&) = delete;

  bool enabled() const { return thread_.joinable(); }
  void SetStep(int64_t step) { step_.store(step, std::memory_order_relaxed); }
  int64_t sent() const { return sent_.load(); }    // beats the coordinator answered
  int64_t failed() const { return failed_.load(); }

  // The body of one beat (public for tests).
  static json Body(const HeartbeatSource& source, int64_t step, double time);

 private:
  void Loop();

  zmq::context_t& ctx_;
  const std::string endpoint_;
  const HeartbeatSource source_;
  const std::chrono::milliseconds period_;
  const Clock& clock_;
  std::atomic<int64_t> step_{0};
  std::atomic<int64_t> sent_{0};
  std::atomic<int64_t> failed_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace gantry::worker
