#include "worker/heartbeat.h"

#include <spdlog/spdlog.h>

namespace gantry::worker {

HeartbeatSender::HeartbeatSender(zmq::context_t& ctx, std::string endpoint, HeartbeatSource source,
                                 std::chrono::milliseconds period, const Clock& clock)
    : ctx_(ctx), endpoint_(std::move(endpoint)), source_(std::move(source)), period_(period), clock_(clock) {
  if (!endpoint_.empty()) thread_ = std::thread([this] { Loop(); });
}

HeartbeatSender::~HeartbeatSender() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

json HeartbeatSender::Body(const HeartbeatSource& source, int64_t step, double time) {
  return {{"job_id", source.job_id}, {"attempt", source.attempt}, {"rank", source.rank},
          {"step", step},            {"time", time}};
}

void HeartbeatSender::Loop() {
  // Bounded by the period so a dead coordinator cannot stall the beats.
  const auto timeout = std::min<std::chrono::milliseconds>(period_, std::chrono::seconds(5));
  RpcClient rpc(ctx_, endpoint_, timeout);
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    l.unlock();
    auto reply = rpc.Call("heartbeat", Body(source_, step_.load(std::memory_order_relaxed), clock_.WallSeconds()));
    if (reply.ok()) {
      ++sent_;
    } else if (failed_++ == 0) {
      spdlog::warn("heartbeat to {} failed (ignored; later failures are not logged): {}", endpoint_,
                   reply.status().ToString());
    }
    l.lock();
    cv_.wait_for(l, period_, [&] { return stop_; });
  }
}

}  // namespace gantry::worker
