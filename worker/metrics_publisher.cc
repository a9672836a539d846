#include "worker/metrics_publisher.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/curve.h"
#include "common/ingest_wire.h"

namespace gantry::worker {
namespace {

MetricsSpoolOptions SpoolOptions(const MetricsPublisherOptions& o, int rank) {
  MetricsSpoolOptions s = o.spool;
  if (s.spill_path.empty() && !o.spill_dir.empty()) s.spill_path = MetricsPublisher::SpillPath(o.spill_dir, rank);
  return s;
}

}  // namespace

MetricsPublisher::MetricsPublisher(zmq::context_t& ctx, const std::string& endpoint, MetricsSource source,
                                   MetricsPublisherOptions options, const Clock* clock)
    : source_(std::move(source)),
      options_(std::move(options)),
      clock_(clock ? *clock : system_clock_),
      spool_(SpoolOptions(options_, source_.rank)) {
  if (endpoint.empty()) return;
  try {
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    s->set(zmq::sockopt::linger, static_cast<int>(kLinger.count()));
    s->set(zmq::sockopt::sndhwm, kSendHighWaterMark);
    MakeCurveClient(*s);
    s->connect(endpoint);
    socket_ = std::move(s);
  } catch (const zmq::error_t& e) {
    // Metrics are an observer: a bad endpoint must not stop training.
    spdlog::error("metrics disabled: cannot connect to monitor {}: {}", endpoint, e.what());
  }
}

MetricsPublisher::~MetricsPublisher() { (void)Close(); }

std::string MetricsPublisher::SpillPath(const std::string& dir, int rank) {
  return dir + "/metrics-spool-rank-" + std::to_string(rank) + ".bin";
}

std::string MetricsPublisher::Encode(const MetricsSource& source, const MetricsPoint& point, int64_t seq) {
  return EncodeMetricsMessage({source.job_id, source.attempt, source.rank, source.world_size, point.step,
                               point.total_steps, point.epoch, point.time, point.values, seq});
}

bool MetricsPublisher::Publish(const MetricsPoint& point) {
  if (!socket_ || closed_) return false;
  ReadAcks();
  bool kept = false;
  if (!spool_.Full()) {
    try {
      kept = spool_.Add(Encode(source_, point, spool_.next_seq()));
    } catch (const std::exception& e) {
      spdlog::debug("metrics encode failed: {}", e.what());
    }
  }
  if (!kept) {
    ++dropped_;
    if (!warned_full_) {
      warned_full_ = true;
      spdlog::warn("metrics: the spool of unacknowledged points is full ({} points{}); dropping new points until "
                   "the monitor acknowledges some (is gantry-monitor running?)",
                   spool_.size(), spool_.spill_status().ok() ? "" : ", " + spool_.spill_status().ToString());
    }
  }
  SendDue();
  return kept;
}

void MetricsPublisher::Pump() {
  if (!socket_) return;
  ReadAcks();
  SendDue();
}

void MetricsPublisher::ReadAcks() {
  zmq::message_t m;
  try {
    while (socket_->recv(m, zmq::recv_flags::dontwait)) {
      if (m.more()) continue;  // acks are single frames
      auto ack = DecodeIngestAck(m.to_string_view());
      if (!ack.ok() || ack->job_id != source_.job_id || ack->attempt != source_.attempt ||
          ack->rank != source_.rank) {
        continue;
      }
      ack_seen_ = true;
      if (spool_.Ack(ack->seq)) {
        last_progress_ = clock_.Now();
        if (warned_full_ && !spool_.Full()) warned_full_ = false;
      }
    }
  } catch (const zmq::error_t& e) {
    spdlog::debug("metrics ack read failed: {}", e.what());
  }
}

void MetricsPublisher::SendDue() {
  const auto now = clock_.Now();
  if (ack_seen_ && spool_.HasUnackedSent() && now - last_progress_ >= options_.resend_after) {
    // Acks stopped short of what was sent: the monitor lost it (restart).
    spdlog::info("metrics: monitor acknowledged up to seq {} of {}; sending the {} unacknowledged points again",
                 spool_.acked(), spool_.next_seq() - 1, spool_.size());
    spool_.Rewind();
    last_progress_ = now;
  }
  for (size_t i = 0; i < options_.max_sends_per_call; ++i) {
    const std::string* frame = spool_.NextToSend();
    if (frame == nullptr) return;
    const int64_t seq = spool_.NextToSendSeq();
    const bool first_outstanding = !spool_.HasUnackedSent();
    try {
      if (!socket_->send(zmq::buffer(*frame), zmq::send_flags::dontwait)) return;  // HWM: later
    } catch (const zmq::error_t& e) {
      spdlog::debug("metrics send failed: {}", e.what());
      return;
    }
    if (first_outstanding) last_progress_ = now;
    if (seq <= high_sent_) ++resent_;
    high_sent_ = std::max(high_sent_, seq);
    ++sent_;
    spool_.MarkSent();
  }
}

int64_t MetricsPublisher::Close() {
  if (!socket_ || closed_) return static_cast<int64_t>(spool_.size());
  const auto deadline = clock_.Now() + options_.close_timeout;
  Pump();
  while (ack_seen_ && !spool_.empty() && clock_.Now() < deadline) {
    zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
    } catch (const zmq::error_t&) {
      break;
    }
    Pump();
  }
  closed_ = true;
  const auto left = static_cast<int64_t>(spool_.size());
  if (ack_seen_ && left > 0) {
    spdlog::warn("metrics: {} points were not acknowledged by the monitor within {} ms and may be lost",
                 left, options_.close_timeout.count());
  } else if (ack_seen_) {
    socket_->set(zmq::sockopt::linger, 0);  // everything is committed
  }
  if (dropped_ > 0) {
    spdlog::warn("metrics: {} points dropped because the spool was full (monitor unreachable for long)", dropped_);
  }
  return left;
}

}  // namespace gantry::worker
