// A job as the coordinator tracks it: its spec, its state machine position
// and the attempts made so far. Plain data; JobStore persists it.
//
// States (DESIGN.md): QUEUED → SCHEDULED → RUNNING → SUCCEEDED | FAILED |
// CANCELLED, with RESTARTING between attempts (PREEMPTED arrives with
// preemption). A job keeps one id for life; each launch is an attempt.
// Their wire form is built in coordinator/service.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/job_spec.h"

namespace gantry::coordinator {

enum class JobState { kQueued, kScheduled, kRunning, kRestarting, kPreempted, kSucceeded, kFailed, kCancelled };

std::string_view JobStateName(JobState s);
std::optional<JobState> JobStateFromName(std::string_view name);
bool IsTerminal(JobState s);

struct Job {
  std::string id;
  JobSpec spec;
  JobState state = JobState::kQueued;
  int priority = 0;
  double submitted_at = 0;  // unix seconds
  double updated_at = 0;
  double started_at = 0;    // of the current/last attempt, 0 if never
  double finished_at = 0;   // 0 until terminal
  int attempt = 0;          // 0 before the first launch
  int restarts = 0;         // attempts beyond the first
  double not_before = 0;    // RESTARTING: earliest relaunch (unix seconds)
  bool cancel_requested = false;
  std::string reason;       // why it waits, or how it ended
  int64_t seq = 0;          // submit order, for FIFO among equal priority
  // In memory only (the scheduler refreshes them every tick):
  double estimated_start = 0;  // waiting: expected start (unix seconds), 0 = unknown
  std::vector<std::string> gpus;  // running: each rank's CUDA_VISIBLE_DEVICES
};

// One launch of a job.
struct Attempt {
  std::string job_id;
  int number = 0;
  double started_at = 0;
  double ended_at = 0;
  int pid = 0;               // launcher process (group leader)
  int pgid = 0;              // its process group (re-adopted by a restarted coordinator)
  std::string log_dir;
  std::string outcome;       // "", "succeeded", "failed", "cancelled", "interrupted"
  std::string failure_class; // exit_code, signal, launch_error, interrupted, cancelled
  int exit_code = -1;
  int signal = 0;
  std::string message;
};

}  // namespace gantry::coordinator
