#include "monitor/alerts/alert_json.h"

#include <cmath>

namespace gantry::monitor::alerts {
namespace {

json Number(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";  // JSON has no Inf
  return v;
}

}  // namespace

json InstanceToJson(const AlertInstance& a) {
  json j = {{"rule", a.key.rule},
            {"scope", ScopeName(a.key.scope)},
            {"kind", KindName(a.kind)},
            {"job", a.key.job},
            {"state", StateName(a.state)},
            {"since", a.since},
            {"active_since", a.active_since},
            {"value", Number(a.value)},
            {"why", a.why},
            {"severity", a.severity},
            {"action", ActionName(a.action)},
            {"labels", a.labels},
            {"annotations", a.annotations}};
  if (a.key.rank >= 0) j["rank"] = a.key.rank;
  return j;
}

json TransitionToJson(const Transition& t) {
  return {{"version", 1},
          {"from", StateName(t.from)},
          {"to", StateName(t.to)},
          {"time", t.time},
          {"action", ActionName(t.action)},
          {"alert", InstanceToJson(t.alert)}};
}

}  // namespace gantry::monitor::alerts
