// Converts a drift library result (drift/detector.h) into the
// engine's DriftSample, so the monitor's drift watcher feeds drift rules.
//
// Thread safety: pure function.
#pragma once

#include <string>

#include "monitor/alerts/engine.h"
#include "drift/detector.h"

namespace gantry::monitor::alerts {

inline DriftSample ToDriftSample(const std::string& source, const drift::DatasetDrift& d) {
  DriftSample s;
  s.source = source;
  s.share = d.share;
  s.drifted = static_cast<int64_t>(d.drifted);
  s.tested = static_cast<int64_t>(d.tested);
  s.dataset_drift = d.dataset_drift;
  s.share_threshold = d.share_threshold;
  return s;
}

}  // namespace gantry::monitor::alerts
