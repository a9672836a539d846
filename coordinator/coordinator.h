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
//   3. stop attempts that outlived their spec's max_runtime (failure class
//      time_limit; they are asked to checkpoint first);
//   4. schedule (scheduler.h for the arithmetic): walk QUEUED, PREEMPTED
//      (and due RESTARTING) jobs by priority, then submit order, and start
//      each whose whole gang fits in the free slots of its pool (cpu jobs on
//      CPU slots, cuda jobs on GPUs, one set of devices per rank; never on a
//      host the job lost in an earlier attempt, host_exclusions.h). The first
//      job of a pool that does not fit is that pool's head: it gets a
//      reservation (the earliest time its slots are surely free, from the
//      running attempts' start + max_runtime), may preempt lower-priority
//      attempts (scheduler.preemption), and a later job starts before it
//      only if that cannot delay it (EASY backfill). Every waiting job
//      records why it waits and, when the max_runtimes allow, when it is
//      expected to start.
// Every transition is written to the store before it is announced, and a
// transition whose write fails does not happen: the in-memory job keeps its
// old state, nothing is announced, and the step is retried (the next Tick
// re-settles an ended attempt, re-schedules a job that could not start) or
// the caller gets the error (Submit, Cancel). An attempt is never left
// running unrecorded: if its start cannot be stored it is killed.
//
// The loop never waits on another service: retention policies go to storage
// through an asynchronous RetentionSink, job events through a non-blocking
// EventSink.
//
// Exit code kExitPreempted (common/exit_codes.h) means the ranks agreed to
// stop, saved a checkpoint and left: the job goes PREEMPTED and is requeued
// at once, without using up a restart.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/data_dir.h"
#include "common/exit_codes.h"
#include "coordinator/events.h"
#include "coordinator/host_exclusions.h"
#include "coordinator/job_store.h"
#include "coordinator/launcher.h"
#include "coordinator/retention.h"
#include "coordinator/scheduler.h"

namespace gantry::coordinator {

// What Describe returns: the job, its attempts, where its files are and,
// while it runs, the last heartbeat of each rank.
struct RankProgressView {
  int rank = 0;
  int64_t step = 0;
  double seconds_since_heartbeat = 0;
};
struct ProgressView {
  std::vector<RankProgressView> ranks;
  double seconds_since_heartbeat = 0;  // of the newest heartbeat (or since start)
};
struct JobView {
  Job job;
  std::vector<Attempt> attempts;
  std::string job_dir;
  std::optional<ProgressView> progress;  // set while an attempt runs
};

// ListJobs: the newest jobs, oldest first.
struct JobListing {
  std::vector<Job> jobs;
};

// ReadLog: a piece of one log file.
struct LogChunk {
  int attempt = 0;
  int rank = 0;
  std::string path;
  std::vector<uint8_t> data;
  int64_t next_offset = 0;
  bool eof = false;
};

struct HostView {
  std::string name;
  int cpus = 0;
  int cpus_used = 0;
  std::vector<int> gpus;
  std::vector<int> gpus_used;
};

struct ClusterView {
  int slots_total = 0;  // CPU slots
  int slots_used = 0;
  int slots_free = 0;
  int gpus_total = 0;   // GPU slots (devices)
  int gpus_used = 0;
  int gpus_free = 0;
  std::vector<HostView> hosts;
  int jobs_running = 0;
  int jobs_queued = 0;  // QUEUED, RESTARTING and PREEMPTED
};

struct CoordinatorOptions {
  int slots = 2;                 // CPU slots of the one local host when `hosts` is empty
  // The cluster config's hosts (CPU slots and GPU devices); empty: one host
  // "localhost" with `slots` CPU slots and no GPU.
  std::vector<HostConfig> hosts;
  SchedulerConfig scheduler;     // backfill, preemption, preempt grace
  std::string storage_endpoint;  // passed to workers
  std::string monitor_endpoint;  // monitor ingest, passed to workers
  std::string coordinator_endpoint;  // this API, for worker heartbeats
  // Time between SIGTERM and SIGKILL when a job is cancelled or the
  // coordinator stops. Longer lets workers checkpoint; shorter frees slots.
  std::chrono::milliseconds stop_grace{10000};
  // How long a host whose loss ended an attempt (failure class node_lost)
  // stays off that job's next attempts (host_exclusions.h). Longer keeps a
  // flapping host away; shorter lets a gang that needs it start sooner.
  std::chrono::seconds host_exclusion{600};
};

class Coordinator {
 public:
  Coordinator(CoordinatorOptions options, DataDir dir, JobStore store, Launcher& launcher,
              EventSink& events, RetentionSink& retention, const Clock& clock);
  ~Coordinator();

  // Loads active jobs. The open attempt of a RUNNING job is settled from
  // its exit file if it ended while no coordinator watched it, re-adopted
  // (Launcher::Adopt) if its process group still runs (its heartbeats get a
  // fresh grace period), and only otherwise treated as interrupted: killed
  // if something of it remains, and its job requeued.
  Status Recover();

  // Validates and queues a spec (the wire form of a JobSpec). Returns the
  // new job; it may already be SCHEDULED/RUNNING (and announced so) when this
  // returns. Errors: invalid_argument for a bad spec or retention policy,
  // resource_exhausted for a gang larger than the cluster, the store's error
  // when the job cannot be recorded (nothing is queued or announced then).
  // The retention policy is checked here and handed to storage
  // asynchronously (RetentionSink): a storage that is down delays the
  // policy, not the submit.
  // A non-empty `request_id` makes the submit idempotent: when a job was
  // already recorded with it (by this run or one before a restart), that
  // job is returned and nothing is queued; the spec is not compared.
  Result<Job> Submit(const json& spec, const std::string& request_id = "");
  Result<Job> Cancel(const std::string& job_id);
  // Job, spec, attempts and log locations.
  Result<JobView> Describe(const std::string& job_id);
  Result<JobListing> ListJobs(bool active_only, int limit);
  // Up to `max_bytes` of a rank's log (or the launcher's) from `offset`.
  // `attempt` 0 means the latest.
  Result<LogChunk> ReadLog(const std::string& job_id, int attempt, int rank, bool launcher, int64_t offset,
                           int64_t max_bytes);
  ClusterView ClusterStatus() const;
  // A rank of a running attempt reports its step. Keeps the attempt from
  // being judged hung (restart.hang_timeout_seconds).
  Status Heartbeat(const std::string& job_id, int attempt, int rank, int64_t step);

  void Tick();
  // Stops every running attempt (SIGTERM, then SIGKILL after stop_grace)
  // and requeues its job for the next start.
  void Shutdown();

  int slots_used() const { return slots_.Used(Pool::kCpu); }
  int gpus_used() const { return slots_.Used(Pool::kGpu); }

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
    bool timed_out = false;  // stopped for outliving max_runtime
    bool preempting = false;  // asked to checkpoint and leave for preempt_for
    std::string preempt_for;
    Placement placement;
    std::string hung_message;  // "no heartbeat for N s"
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point stop_sent;
    std::chrono::steady_clock::time_point last_heartbeat;  // started until one arrives
    std::map<int, RankProgress> ranks;
  };

  // Recover: takes `a` (job's open attempt) back into running_ if it ended
  // (exit file) or still runs. False: neither; the caller interrupts it.
  Result<bool> Readopt(Job& job, const Attempt& a);
  void Reap();
  void Schedule();
  void StartAttempt(Job& job, const Placement& placement);
  // Schedule()'s preemption step for `job`, the blocked head of its pool:
  // asks the fewest lowest-priority attempts to checkpoint and leave. The
  // reason it waits (the victims) or "" when nothing is preempted for it.
  std::string Preempt(const Job& job, const JobSpec& spec, int free);
  // Seconds from now until `run` surely ends (kNever when it has no max_runtime).
  double EndsIn(const Job& job, const Running& run, std::chrono::steady_clock::time_point now) const;
  // Settles `job` after its attempt ended with `exit`. On error nothing
  // changed (in memory or announced) and the caller retries later.
  Status Settle(Job& job, Running& run, const ExitInfo& exit);
  // Persists `next` (a changed copy of `job`), then makes it `job` and
  // announces it. On error `job` is unchanged and nothing is announced.
  Status Save(Job& job, Job next);
  void SetReason(Job& job, const std::string& reason);
  void RequestStop(Running& run);
  // Ends attempt `a` of `job` because Gantry itself stopped (not the job's
  // fault) and requeues the job, or cancels it if that was asked.
  Status Interrupt(Job& job, Attempt a, const ExitInfo& exit, const std::string& failure_class,
                   const std::string& what);
  // The job by id: the in-memory copy if active, else the stored one.
  Result<Job> Find(const std::string& job_id);
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
  SlotMap slots_;
  // Preemption bookkeeping (in memory: a restart forgets it): when a job
  // last asked for victims, and when a job was last preempted.
  std::map<std::string, std::chrono::steady_clock::time_point> preempt_asked_;
  std::map<std::string, std::chrono::steady_clock::time_point> preempted_at_;
  HostExclusions exclusions_;  // hosts lost by a job's attempts, kept off its next ones
};

}  // namespace gantry::coordinator
