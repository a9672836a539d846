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

json Job::ToJson() const {
  return {{"job_id", id},
          {"name", spec.name},
          {"state", JobStateName(state)},
          {"priority", priority},
          {"workers", spec.resources.workers},
          {"slots", spec.SlotsNeeded()},
          {"submitted_at", submitted_at},
          {"updated_at", updated_at},
          {"started_at", started_at},
          {"finished_at", finished_at},
          {"attempt", attempt},
          {"restarts", restarts},
          {"model", spec.checkpoint.model},
          {"reason", reason}};
}

json Attempt::ToJson() const {
  return {{"attempt", number},   {"started_at", started_at},   {"ended_at", ended_at},
          {"pid", pid},          {"log_dir", log_dir},         {"outcome", outcome},
          {"failure_class", failure_class}, {"exit_code", exit_code}, {"signal", signal},
          {"message", message}};
}

}  // namespace gantry::coordinator
