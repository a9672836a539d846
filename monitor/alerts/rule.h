// The alert rules live in common/alert_rules.h (JobSpec validates a spec's
// `alerts:` with them); the monitor's alert code names them as
// gantry::monitor::alerts::Rule, ... through this header.
#pragma once

#include "common/alert_rules.h"

namespace gantry::monitor::alerts {
using namespace gantry::alert_rules;  // NOLINT: re-export of the rule types
}  // namespace gantry::monitor::alerts
