#include "coordinator/events.h"

#include "common/protocol.h"

namespace gantry::coordinator {

MonitorEventSink::MonitorEventSink(zmq::context_t& ctx, const std::string& endpoint) {
  if (endpoint.empty()) return;
  socket_ = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::push);
  socket_->set(zmq::sockopt::linger, 1000);
  socket_->set(zmq::sockopt::sndhwm, 10000);
  socket_->connect(endpoint);
}

void MonitorEventSink::JobChanged(const Job& job, double now) {
  if (!socket_) return;
  json msg = {{"v", kProtocolVersion},
              {"type", "job_state"},
              {"id", ""},
              {"body",
               {{"job_id", job.id},
                {"state", JobStateName(job.state)},
                {"attempt", job.attempt},
                {"reason", job.reason},
                {"time", now}}}};
  std::string bytes = ToMsgpack(msg);
  try {
    if (!socket_->send(zmq::buffer(bytes), zmq::send_flags::dontwait)) ++dropped_;
  } catch (const zmq::error_t&) {
    ++dropped_;
  }
}

}  // namespace gantry::coordinator
