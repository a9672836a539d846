// Notifier: where alert state changes go besides the store (a webhook now;
// the feed and the coordinator are the monitor's own wiring).
//
// Thread safety: implementations must accept Notify() from any thread and
// must not block the caller (the engine's thread) on the network.
#pragma once

#include "monitor/alerts/alert.h"

namespace gantry::monitor::alerts {

class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void Notify(const Transition& t) = 0;
};

}  // namespace gantry::monitor::alerts
