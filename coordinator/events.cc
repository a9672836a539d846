#include "coordinator/events.h"

#include <spdlog/spdlog.h>

#include "common/curve.h"
#include "common/ingest_wire.h"

namespace gantry::coordinator {

MonitorEventSink::MonitorEventSink(zmq::context_t& ctx, const std::string& endpoint) {
  if (endpoint.empty()) return;
  try {
    // DEALER: the monitor's ingest is a ROUTER (it acks sequenced metrics;
    // job_state frames get no reply).
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    s->set(zmq::sockopt::linger, 1000);
    s->set(zmq::sockopt::sndhwm, 10000);
    MakeCurveClient(*s);
    s->connect(endpoint);
    socket_ = std::move(s);
  } catch (const zmq::error_t& e) {
    // Events are for observers: a bad monitor endpoint must not stop the
    // coordinator. Jobs still run; `gantry watch` falls back to polling.
    spdlog::error("job events disabled: cannot connect to monitor {}: {}", endpoint, e.what());
  }
}

void MonitorEventSink::JobChanged(const Job& job, double now) {
  if (!socket_) return;
  std::string bytes = EncodeJobStateMessage({job.id, std::string(JobStateName(job.state)), job.attempt, job.reason,
                                             now, job.spec.name, job.spec.alerts});
  try {
    if (!socket_->send(zmq::buffer(bytes), zmq::send_flags::dontwait)) ++dropped_;
  } catch (const zmq::error_t&) {
    ++dropped_;
  }
}

}  // namespace gantry::coordinator
