// JSON of alerts, for the places where one is encoded: the webhook body, and
// later the monitor's /api/alerts, the feed and `gantry alerts --json`.
//
//   instance: {rule, scope, kind, job, rank?, state, since, active_since,
//              value (null for NaN), why, severity, action, labels, annotations}
//   transition (webhook body): {version: 1, from, to, time, action, alert: instance}
//
// Thread safety: pure functions.
#pragma once

#include "common/protocol.h"
#include "monitor/alerts/alert.h"

namespace gantry::monitor::alerts {

json InstanceToJson(const AlertInstance& a);
json TransitionToJson(const Transition& t);

}  // namespace gantry::monitor::alerts
