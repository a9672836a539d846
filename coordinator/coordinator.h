// Coordinator: the job state machine and the gang scheduler.
//
// It owns the JobStore (durable truth), the set of running attempts and a
// Launcher. All methods run on one thread (the service loop); Tick() is
// called every loop turn and does, in order:
//   1. reap attempts whose ranks have exited and settle their job
//      (SUCCEEDED, FAILED, CANCELLED, or RESTARTING under the restart policy);
//   2. escalate cancellations whose grace period ran out (SIGKILL), and kill
//      attempts whose ranks sent no heartbeat for restart.hang_timeout_seconds
//      (failure class "hang": slow progress still heartbeats, a hang does not);
//   3. schedule: walk QUEUED (and due RESTARTING) jobs by priority, then
//      submit order, and start each whose whole gang fits in the free slots.
//      The first job that does not fit blocks the ones behind it (no
//      backfill yet), and every waiting job records why it waits.
// Every transition is written to the store before it is announced.
//
// Exit code 75 (kExitPreempted) means the ranks agreed to stop, saved a
// checkpoint and left: the job goes PREEMPTED and is requeued at once,
// without using up a restart.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/data_dir.h"
#include "coordinator/events.h"
#include "coordinator/job_store.h"
#include "coordinator/launcher.h"
#include "coordinator/retention.h"

namespace gantry::coordinator {

// Exit status of a worker that checkpointed and stopped on SIGTERM.
inline constexpr int kExitPreempted = 75;

struct CoordinatorOptions {
  int slots = 2;                 // total slots on this machine (cores)
  std::string storage_endpoint;  // passed to workers
  std::string monitor_endpoint;  // monitor ingest, passed to workers
  std::string coordinator_endpoint;  // this API, for worker heartbeats
  // Time between SIGTERM and SIGKILL when a job is cancelled or the
  // coordinator stops. Longer lets workers checkpoint; shorter frees slots.
  std::chrono::milliseconds stop_grace{10000};
};

class Coordinator {
 public:
  Coordinator(CoordinatorOptions options, DataDir dir, JobStore store, Launcher& launcher,
              EventSink& events, RetentionSink& retention, const Clock& clock);
  ~Coordinator();

  // Loads active jobs; attempts interrupted by a previous crash are killed
  // if still alive and their jobs requeued.
  Status Recover();

  // Validates and queues a spec (JSON of a JobSpec). Returns the new job.
  Result<Job> Submit(const json& spec);
  Result<Job> Cancel(const std::string& job_id);
  // Job, spec, attempts and log locations.
  Result<json> Describe(const std::string& job_id);
  Result<json> ListJobs(bool active_only, int limit);
  // Up to `max_bytes` of a rank's log (or the launcher's) from `offset`.
  // `attempt` 0 means the latest.
  Result<json> ReadLog(const std::string& job_id, int attempt, int rank, bool launcher, int64_t offset,
                       int64_t max_bytes);
  json ClusterStatus() const;
  // A rank of a running attempt reports its step. Keeps the attempt from
  // being judged hung (restart.hang_timeout_seconds).
  Status Heartbeat(const std::string& job_id, int attempt, int rank, int64_t step);

  void Tick();
  // Stops every running attempt (SIGTERM, then SIGKILL after stop_grace)
  // and requeues its job for the next start.
  void Shutdown();

  int slots_used() const { return slots_used_; }

 private:
  struct RankProgress {
    int64_t step = 0;
    std::chrono::steady_clock::time_point seen;
  };
  struct Running {
    std::unique_ptr<Launch> launch;
    Attempt attempt;
    bool stopping = false;
    bool hung = false;  // killed for missing heartbeats
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point stop_sent;
    std::chrono::steady_clock::time_point last_heartbeat;  // started until one arrives
    std::map<int, RankProgress> ranks;
  };

  void Reap();
  void Schedule();
  void StartAttempt(Job& job);
  // Settles `job` after its attempt ended with `exit`.
  void Settle(Job& job, Running& run, const ExitInfo& exit);
  // Persists and announces a change of `job`.
  void Save(Job& job);
  void SetReason(Job& job, const std::string& reason);
  void RequestStop(Running& run);
  // Ends attempt `a` of `job` because Gantry itself stopped (not the job's
  // fault) and requeues the job, or cancels it if that was asked.
  void Interrupt(Job& job, Attempt& a, const ExitInfo& exit, const std::string& failure_class,
                 const std::string& what);
  // Seconds `run` has been silent if that exceeds the job's hang timeout, else 0.
  static double HungFor(const Job& job, const Running& run, std::chrono::steady_clock::time_point now);

  CoordinatorOptions options_;
  DataDir dir_;
  JobStore store_;
  Launcher& launcher_;
  EventSink& events_;
  RetentionSink& retention_;
  const Clock& clock_;
  std::map<std::string, Job> active_;       // non-terminal jobs by id
  std::map<std::string, Running> running_;  // attempts in flight by job id
  int slots_used_ = 0;
};

}  // namespace gantry::coordinator
