#include "coordinator/job.h"

#include <array>

namespace gantry::coordinator {
namespace {
constexpr std::array<std::string_view, 8> kNames = {"QUEUED",    "SCHEDULED", "RUNNING",   "RESTARTING",
                                                    "PREEMPTED", "SUCCEEDED", "FAILED",    "CANCELLED"};
}

std::string_view JobStateName(JobState s) { return kNames[static_cast<size_t>(s)]; }

std::optional<JobState> JobStateFromName(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<JobState>(i);
  }
  return std::nullopt;
}

bool IsTerminal(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled;
}

}  // namespace gantry::coordinator
