#include "monitor/alerts/alert.h"

namespace gantry::monitor::alerts {

const char* StateName(AlertState s) {
  switch (s) {
    case AlertState::kInactive: return "inactive";
    case AlertState::kPending: return "pending";
    case AlertState::kFiring: return "firing";
    case AlertState::kResolved: return "resolved";
  }
  return "?";
}

std::optional<AlertState> StateFromName(const std::string& s) {
  for (AlertState st : {AlertState::kInactive, AlertState::kPending, AlertState::kFiring, AlertState::kResolved}) {
    if (s == StateName(st)) return st;
  }
  return std::nullopt;
}

std::string AlertKey::ToString() const {
  std::string s = std::string(ScopeName(scope)) + "/" + rule + "/" + job;
  if (rank >= 0) s += "/rank " + std::to_string(rank);
  return s;
}

}  // namespace gantry::monitor::alerts
