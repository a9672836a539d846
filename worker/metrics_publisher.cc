#include "worker/metrics_publisher.h"

#include <spdlog/spdlog.h>

#include "common/ingest_wire.h"

namespace gantry::worker {

MetricsPublisher::MetricsPublisher(zmq::context_t& ctx, const std::string& endpoint,
                                   MetricsSource source)
    : source_(std::move(source)) {
  if (endpoint.empty()) return;
  try {
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::push);
    s->set(zmq::sockopt::linger, static_cast<int>(kLinger.count()));
    s->set(zmq::sockopt::sndhwm, kSendHighWaterMark);
    s->connect(endpoint);
    socket_ = std::move(s);
  } catch (const zmq::error_t& e) {
    // Metrics are an observer: a bad endpoint must not stop training.
    spdlog::error("metrics disabled: cannot connect to monitor {}: {}", endpoint, e.what());
  }
}

MetricsPublisher::~MetricsPublisher() {
  if (dropped_ > 0) {
    spdlog::warn("metrics: {} of {} points dropped (monitor unreachable or slow)", dropped_,
                 dropped_ + sent_);
  }
}

std::string MetricsPublisher::Encode(const MetricsSource& source, const MetricsPoint& point) {
  return EncodeMetricsMessage({source.job_id, source.attempt, source.rank, source.world_size, point.step,
                               point.total_steps, point.epoch, point.time, point.values});
}

bool MetricsPublisher::Publish(const MetricsPoint& point) {
  if (!socket_) return false;
  try {
    std::string frame = Encode(source_, point);
    if (socket_->send(zmq::buffer(frame), zmq::send_flags::dontwait)) {
      ++sent_;
      return true;
    }
  } catch (const std::exception& e) {
    spdlog::debug("metrics send failed: {}", e.what());
  }
  ++dropped_;
  return false;
}

}  // namespace gantry::worker
