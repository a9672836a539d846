// ReadModel: the monitor's in-memory view of its jobs, updated on ingest and
// read by the HTTP threads (/api/jobs, /metrics).
//
// MonitorService's ingest (the RpcServer thread) calls OnPoint/OnEvent for
// every accepted message; the HTTP handlers call Jobs(), Known() and
// Snapshot(). Only the latest values are kept (per job: its state, attempt,
// newest step, rank 0's latest values, each rank's latest step_time), so the
// memory grows with the number of jobs, not points. Series live in the store.
//
// Checkpoint counters: the worker publishes {"checkpoint_failed": 1,
// "checkpoint_step": s} for a failed save; a point carrying checkpoint_step
// without checkpoint_failed counts as a saved checkpoint.
//
// Thread safety: every member function is thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "monitor/ingest_message.h"
#include "monitor/prometheus/snapshot.h"

namespace gantry::monitor {

// Every state of the job state machine (coordinator/job.h), listed on
// /metrics with 0 so a series never vanishes.
inline constexpr const char* kJobStates[] = {"QUEUED",    "SCHEDULED", "RUNNING",   "RESTARTING",
                                             "PREEMPTED", "SUCCEEDED", "FAILED",    "CANCELLED"};

struct JobSummary {
  std::string job_id;
  std::string name;   // from a job_state event's optional "name"; may be empty
  std::string state;  // latest job_state; empty when only points arrived
  int64_t attempt = 0;
  int64_t step = -1;  // newest step seen; -1 before any point
  int64_t total_steps = 0;
  double updated = 0;  // time of the newest point or event (unix seconds)
};

class ReadModel {
 public:
  void OnPoint(const MetricsPoint& p);
  void OnEvent(const JobEvent& e, const std::string& name);
  // Rebuilds a job's view from stored history at start (events in order,
  // then its latest points) without counting them as ingested.
  void Restore(const std::vector<JobEvent>& events, const std::vector<MetricsPoint>& latest);
  // Counts a message ingest refused.
  void OnDropped();

  // Every job, newest `updated` first.
  std::vector<JobSummary> Jobs() const;
  bool Known(const std::string& job_id) const;
  // Jobs by state, queue depth, running jobs' latest values, checkpoint and
  // ingest counters. Alerts and drift are the caller's to add.
  prometheus::MetricsSnapshot Snapshot() const;

 private:
  struct Job {
    JobSummary summary;
    std::map<std::string, double> latest;     // rank 0's latest values
    std::map<int64_t, double> rank_step_time;  // rank -> latest step_time
  };
  // REQUIRES: mu_ held. `count`: a new message (counters move), not a replay.
  void ApplyPoint(const MetricsPoint& p, bool count);
  void ApplyEvent(const JobEvent& e, const std::string& name, bool count);

  mutable std::mutex mu_;
  std::map<std::string, Job> jobs_;  // GUARDED_BY(mu_)
  uint64_t points_ = 0;              // GUARDED_BY(mu_)
  uint64_t events_ = 0;              // GUARDED_BY(mu_)
  uint64_t dropped_ = 0;             // GUARDED_BY(mu_)
  uint64_t checkpoints_saved_ = 0;   // GUARDED_BY(mu_)
  uint64_t checkpoints_failed_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace gantry::monitor
