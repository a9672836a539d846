// Where the coordinator announces job state changes. The production sink
// pushes `job_state` messages to the monitor's ingest socket (the monitor
// stores them and republishes them on the live feed, which `gantry watch`
// follows); tests record them. Sending never blocks the scheduler: a
// monitor that is down costs dropped events, not a stalled coordinator.
// Messages are built by common/ingest_wire.h.
#pragma once

#include <memory>
#include <string>
#include <zmq.hpp>

#include "coordinator/job.h"

namespace gantry::coordinator {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void JobChanged(const Job& job, double now) = 0;
};

class MonitorEventSink final : public EventSink {
 public:
  // `endpoint` empty disables sending; so does one that cannot be connected
  // (logged). Never throws.
  MonitorEventSink(zmq::context_t& ctx, const std::string& endpoint);
  void JobChanged(const Job& job, double now) override;
  int64_t dropped() const { return dropped_; }

 private:
  std::unique_ptr<zmq::socket_t> socket_;
  int64_t dropped_ = 0;
};

}  // namespace gantry::coordinator
