#include "coordinator/coordinator.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/ids.h"

namespace gantry::coordinator {
namespace {

// True if `pid` still runs a launch of `job_id` (guards against pid reuse).
bool LaunchAlive(int pid, const std::string& job_id) {
  if (!ProcessAlive(pid)) return false;
  auto cmd = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  return cmd.ok() && cmd->find(job_id) != std::string::npos;
}

std::string Plural(int n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::vector<HostConfig> HostsOf(const CoordinatorOptions& o) {
  if (!o.hosts.empty()) return o.hosts;
  return {HostConfig{"localhost", o.slots, {}}};
}

// The record of where an attempt's ranks run, next to its logs, so that a
// restarted coordinator that re-adopts the attempt holds the same devices.
constexpr const char* kPlacementFile = "placement.json";

std::string JoinIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ", ") + id;
  return out;
}

double Seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

Coordinator::Coordinator(CoordinatorOptions options, DataDir dir, JobStore store, Launcher& launcher,
                         EventSink& events, RetentionSink& retention, const Clock& clock)
    : options_(std::move(options)),
      dir_(std::move(dir)),
      store_(std::move(store)),
      launcher_(launcher),
      events_(events),
      retention_(retention),
      clock_(clock),
      slots_(HostsOf(options_)),
      exclusions_(options_.host_exclusion, clock_) {}

Coordinator::~Coordinator() {
  // Running attempts die with their Launch objects; Shutdown() is the clean path.
}

Status Coordinator::Save(Job& job, Job next) {
  next.updated_at = clock_.WallSeconds();
  if (Status s = store_.Update(next); !s.ok()) {
    Status err = s.WithContext("persisting job " + job.id + " (" + std::string(JobStateName(next.state)) + ")");
    spdlog::error("{}; the job stays {} and the change is retried", err.ToString(), JobStateName(job.state));
    return err;
  }
  job = std::move(next);
  events_.JobChanged(job, job.updated_at);
  return Status::Ok();
}

void Coordinator::SetReason(Job& job, const std::string& reason) {
  if (job.reason == reason) return;
  Job next = job;
  next.reason = reason;
  (void)Save(job, std::move(next));  // logged; the next Schedule() tries again
}

Result<Job> Coordinator::Find(const std::string& job_id) {
  if (auto it = active_.find(job_id); it != active_.end()) return it->second;
  return store_.Get(job_id);
}

Status Coordinator::Recover() {
  GANTRY_ASSIGN_OR_RETURN(auto jobs, store_.List(/*active_only=*/true, 1 << 30));
  for (Job& job : jobs) {
    if (job.state == JobState::kScheduled || job.state == JobState::kRunning) {
      GANTRY_ASSIGN_OR_RETURN(auto attempts, store_.Attempts(job.id));
      bool adopted = false;
      for (Attempt& a : attempts) {
        if (a.number != job.attempt || !a.outcome.empty()) continue;
        GANTRY_ASSIGN_OR_RETURN(adopted, Readopt(job, a));
        if (adopted) break;
        if (a.pid > 0 && LaunchAlive(a.pid, job.id)) {
          spdlog::warn("killing orphaned attempt {} of job {} (pid {})", a.number, job.id, a.pid);
          ::kill(-a.pid, SIGKILL);
        }
        GANTRY_RETURN_IF_ERROR(Interrupt(job, a, ExitInfo{}, "coordinator_restart", "the coordinator restarted"));
      }
      if (!adopted && (job.state == JobState::kScheduled || job.state == JobState::kRunning)) {
        // Stored as started but no open attempt: the coordinator stopped
        // between recording the start and recording the attempt.
        Job next = job;
        next.state = JobState::kQueued;
        next.reason = "requeued: the coordinator restarted before attempt " + std::to_string(job.attempt) +
                      " was recorded";
        GANTRY_RETURN_IF_ERROR(Save(job, std::move(next)));
      }
      spdlog::info("job {} -> {} ({})", job.id, JobStateName(job.state), job.reason);
    }
    if (!IsTerminal(job.state)) active_.emplace(job.id, std::move(job));
  }
  spdlog::info("recovered {} active jobs", active_.size());
  return Status::Ok();
}

namespace {

// An attempt that ended while no coordinator watched it: its exit file says how.
class EndedLaunch final : public Launch {
 public:
  EndedLaunch(ExitInfo exit, int pid) : exit_(exit), pid_(pid) {}
  std::optional<ExitInfo> Poll() override { return exit_; }
  void RequestStop() override {}
  void RequestPreempt() override {}
  ExitInfo Kill() override { return exit_; }
  int pid() const override { return pid_; }

 private:
  ExitInfo exit_;
  int pid_;
};

}  // namespace

Result<bool> Coordinator::Readopt(Job& job, const Attempt& a) {
  std::unique_ptr<Launch> launch;
  if (auto exit = ReadExitStatus(a.log_dir)) {
    spdlog::info("job {}: attempt {} ended while the coordinator was down ({})", job.id, a.number,
                 exit->ToString());
    launch = std::make_unique<EndedLaunch>(*exit, a.pid);
  } else {
    auto adopted = launcher_.Adopt(AdoptRequest{job.id, a.number, a.pid, a.pgid, a.log_dir});
    if (!adopted.ok()) return false;
    spdlog::info("job {}: re-adopted running attempt {} (pid {}, group {})", job.id, a.number, a.pid,
                 a.pgid > 0 ? a.pgid : a.pid);
    launch = std::move(adopted).value();
  }
  if (job.state != JobState::kRunning) {
    Job next = job;
    next.state = JobState::kRunning;
    next.reason = "running attempt " + std::to_string(a.number) + " on " +
                  Plural(job.spec.resources.workers, "worker");
    if (Status s = Save(job, std::move(next)); !s.ok()) {
      launch->Abandon();  // Recover fails; the next coordinator finds it again
      return s;
    }
  }
  Running run;
  run.launch = std::move(launch);
  run.attempt = a;
  run.started = run.last_heartbeat = clock_.Now();  // a fresh grace period for heartbeats
  std::optional<Placement> placement;
  if (auto text = ReadFile(a.log_dir + "/" + kPlacementFile); text.ok()) {
    json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (auto p = Placement::FromJson(j); p.ok()) placement = *p;
  }
  if (!placement) placement = slots_.Place(job.spec);  // an attempt from before placements were recorded
  if (placement) {
    run.placement = *placement;
    slots_.Take(run.placement);
    job.gpus = run.placement.GpuLists();
  } else {
    spdlog::warn("job {}: no record of attempt {}'s slots and none free; it runs beyond the slot count", job.id,
                 a.number);
  }
  running_.emplace(job.id, std::move(run));
  return true;
}

Result<Job> Coordinator::Submit(const json& spec_json, const std::string& request_id) {
  if (!request_id.empty()) {
    GANTRY_ASSIGN_OR_RETURN(auto earlier, store_.JobForRequest(request_id));
    if (earlier) {
      spdlog::info("submit request {} repeated: job {} already queued for it", request_id, *earlier);
      if (auto it = active_.find(*earlier); it != active_.end()) return it->second;
      return store_.Get(*earlier);
    }
  }
  GANTRY_ASSIGN_OR_RETURN(JobSpec spec, JobSpec::Parse(spec_json));
  GANTRY_RETURN_IF_ERROR(spec.CheckFiles());
  const Pool pool = PoolOf(spec);
  if (pool == Pool::kGpu && slots_.Total(Pool::kGpu) == 0) {
    return Status::InvalidArgument(
        "job spec: resources.device is cuda but this cluster declares no GPU slots; declare hosts[].gpus in the "
        "cluster config (gantry up --config FILE) on a machine with GPUs, or use cpu");
  }
  if (!slots_.CouldEverFit(spec)) {
    const bool gpu = pool == Pool::kGpu;
    return Status::ResourceExhausted(
        "job spec: resources.workers needs " + SlotCount(spec.SlotsNeeded(), pool) +
        " (workers x slots_per_worker, at most one host per worker) but this cluster has only " +
        SlotCount(slots_.Total(pool), pool) + (slots_.hosts().size() > 1 ? " across its hosts" : "") +
        "; lower resources.workers or give the cluster more " +
        (gpu ? std::string("GPUs (hosts[].gpus in the cluster config)")
             : std::string("slots (gantry up --slots N, or hosts[].cpus in the cluster config)")));
  }
  GANTRY_RETURN_IF_ERROR(retention_.Check(spec));
  Job job;
  job.id = NewJobId(clock_);
  // An id is the second plus 16 random bits, so a burst of submissions
  // within one second can draw one twice (~16% at 150 in a second): draw
  // again rather than fail the submission.
  for (int draws = 1; active_.count(job.id) != 0 || store_.Get(job.id).ok(); ++draws) {
    if (draws == 64) return Status::Internal("no free job id this second; submit again");
    job.id = NewJobId(clock_);
  }
  job.spec = std::move(spec);
  job.priority = job.spec.priority;
  job.submitted_at = job.updated_at = clock_.WallSeconds();
  job.reason = "queued";
  GANTRY_RETURN_IF_ERROR(store_.Insert(job, request_id).WithContext("recording the job"));
  retention_.Apply(job.spec);  // queued, never waits on storage
  events_.JobChanged(job, job.updated_at);
  spdlog::info("job {} ({}) queued: {} workers", job.id, job.spec.name, job.spec.resources.workers);
  std::string id = job.id;
  active_.emplace(id, std::move(job));
  Schedule();
  // Scheduling may already have started (or failed to launch) the job.
  if (auto it = active_.find(id); it != active_.end()) return it->second;
  return store_.Get(id);
}

Result<Job> Coordinator::Cancel(const std::string& job_id) {
  auto it = active_.find(job_id);
  if (it == active_.end()) {
    GANTRY_ASSIGN_OR_RETURN(Job done, store_.Get(job_id));
    return done;  // already finished: cancelling is a no-op
  }
  Job& job = it->second;
  Job next = job;
  next.cancel_requested = true;
  auto run = running_.find(job_id);
  if (run == running_.end()) {
    next.state = JobState::kCancelled;
    next.finished_at = clock_.WallSeconds();
    next.reason = "cancelled before it ran";
    GANTRY_RETURN_IF_ERROR(Save(job, std::move(next)));
    Job out = job;
    active_.erase(it);
    preempt_asked_.erase(job_id);
    preempted_at_.erase(job_id);
    return out;
  }
  next.reason = "cancelling: stopping workers";
  GANTRY_RETURN_IF_ERROR(Save(job, std::move(next)));
  RequestStop(run->second);
  return job;
}

void Coordinator::RequestStop(Running& run) {
  if (run.stopping) return;
  run.stopping = true;
  run.stop_sent = clock_.Now();
  run.launch->RequestStop();
}

Result<JobView> Coordinator::Describe(const std::string& job_id) {
  JobView view;
  GANTRY_ASSIGN_OR_RETURN(view.job, Find(job_id));
  GANTRY_ASSIGN_OR_RETURN(view.attempts, store_.Attempts(job_id));
  view.job_dir = dir_.JobDir(job_id);
  if (auto run = running_.find(job_id); run != running_.end()) {
    auto now = clock_.Now();
    ProgressView p;
    for (const auto& [rank, r] : run->second.ranks) {
      p.ranks.push_back({rank, r.step, std::chrono::duration<double>(now - r.seen).count()});
    }
    p.seconds_since_heartbeat = std::chrono::duration<double>(now - run->second.last_heartbeat).count();
    view.progress = std::move(p);
  }
  return view;
}

Result<JobListing> Coordinator::ListJobs(bool active_only, int limit) {
  GANTRY_ASSIGN_OR_RETURN(auto jobs, store_.List(active_only, limit));
  JobListing out;
  for (auto& j : jobs) {
    // The in-memory copy is fresher for active jobs (reasons are cached).
    auto it = active_.find(j.id);
    out.jobs.push_back(it != active_.end() ? it->second : std::move(j));
  }
  return out;
}

ClusterView Coordinator::ClusterStatus() const {
  ClusterView v;
  for (const auto& [id, j] : active_) {
    if (j.state == JobState::kQueued || j.state == JobState::kRestarting || j.state == JobState::kPreempted) {
      ++v.jobs_queued;
    }
  }
  v.slots_total = slots_.Total(Pool::kCpu);
  v.slots_used = slots_.Used(Pool::kCpu);
  v.slots_free = slots_.Free(Pool::kCpu);
  v.gpus_total = slots_.Total(Pool::kGpu);
  v.gpus_used = slots_.Used(Pool::kGpu);
  v.gpus_free = slots_.Free(Pool::kGpu);
  for (size_t i = 0; i < slots_.hosts().size(); ++i) {
    const HostConfig& h = slots_.hosts()[i];
    const auto& used = slots_.GpusUsed(i);
    v.hosts.push_back({h.name, h.cpus, slots_.CpusUsed(i), h.gpus, std::vector<int>(used.begin(), used.end())});
  }
  v.jobs_running = static_cast<int>(running_.size());
  return v;
}

void Coordinator::Tick() {
  Reap();
  Schedule();
}

void Coordinator::Reap() {
  auto now = clock_.Now();
  std::vector<std::string> done;
  // An attempt whose outcome cannot be stored stays in running_ (its slots
  // held): the next Tick polls its exit again and retries.
  for (auto& [id, run] : running_) {
    if (auto exit = run.launch->Poll()) {
      if (Settle(active_.at(id), run, *exit).ok()) done.push_back(id);
    } else if (run.stopping && now - run.stop_sent >= options_.stop_grace) {
      spdlog::warn("job {}: workers ignored SIGTERM for {} ms, killing", id, options_.stop_grace.count());
      ExitInfo e = run.launch->Kill();
      if (Settle(active_.at(id), run, e).ok()) done.push_back(id);
    } else if (!run.stopping && EndsIn(active_.at(id), run, now) <= 0) {
      const double limit = active_.at(id).spec.max_runtime;
      spdlog::warn("job {}: attempt {} ran past its max_runtime of {:.0f} s, stopping it (checkpoint first)", id,
                   run.attempt.number, limit);
      run.timed_out = true;
      run.stopping = true;
      run.stop_sent = now;
      run.launch->RequestPreempt();
    } else if (!run.stopping && HungFor(active_.at(id), run, now) > 0) {
      double silent = HungFor(active_.at(id), run, now);
      spdlog::warn("job {}: no heartbeat for {:.0f} s, killing attempt {} as hung", id, silent, run.attempt.number);
      run.hung = true;
      run.hung_message = "no heartbeat for " + std::to_string(static_cast<int>(silent)) + " s";
      ExitInfo e = run.launch->Kill();
      if (Settle(active_.at(id), run, e).ok()) done.push_back(id);
    }
  }
  for (const auto& id : done) {
    slots_.Release(running_.at(id).placement);
    active_.at(id).gpus.clear();
    running_.erase(id);
    if (IsTerminal(active_.at(id).state)) {
      active_.erase(id);
      preempt_asked_.erase(id);
      preempted_at_.erase(id);
      exclusions_.Forget(id);
    }
  }
}

double Coordinator::EndsIn(const Job& job, const Running& run, std::chrono::steady_clock::time_point now) const {
  double end = kNever;
  if (job.spec.max_runtime > 0) end = job.spec.max_runtime - Seconds(now - run.started);
  // A stopping attempt is killed when its grace runs out.
  if (run.stopping) end = std::min(end, Seconds(options_.stop_grace) - Seconds(now - run.stop_sent));
  return end;
}

double Coordinator::HungFor(const Job& job, const Running& run, std::chrono::steady_clock::time_point now) {
  double timeout = job.spec.restart.hang_timeout_seconds;
  if (timeout <= 0) return 0;
  double silent = std::chrono::duration<double>(now - run.last_heartbeat).count();
  return silent >= timeout ? silent : 0;
}

Status Coordinator::Heartbeat(const std::string& job_id, int attempt, int rank, int64_t step) {
  auto it = running_.find(job_id);
  if (it == running_.end() || it->second.attempt.number != attempt) {
    return Status::FailedPrecondition("attempt " + std::to_string(attempt) + " of job " + job_id +
                                      " is not running");
  }
  auto now = clock_.Now();
  it->second.last_heartbeat = now;
  it->second.ranks[rank] = RankProgress{step, now};
  return Status::Ok();
}

Status Coordinator::Settle(Job& current, Running& run, const ExitInfo& exit) {
  double now = clock_.WallSeconds();
  // Worked on copies: a failed write leaves the job and attempt as they were.
  Job job = current;
  Attempt a = run.attempt;
  a.ended_at = now;
  a.exit_code = exit.exit_code;
  a.signal = exit.signal;
  std::string logs = "see `gantry logs " + job.id + "`";
  if (job.cancel_requested) {
    a.outcome = "cancelled";
    a.failure_class = "cancelled";
    job.state = JobState::kCancelled;
    job.reason = "cancelled while running (attempt " + std::to_string(a.number) + ")";
  } else if (exit.ok()) {
    a.outcome = "succeeded";
    job.state = JobState::kSucceeded;
    job.reason = "finished";
  } else if (exit.failure_class == "cancelled") {
    // Cancelled outside Gantry (a launcher that knows: scancel under Slurm).
    a.outcome = "cancelled";
    a.failure_class = "cancelled";
    a.message = "attempt " + std::to_string(a.number) + " cancelled outside Gantry: " + exit.ToString();
    job.state = JobState::kCancelled;
    job.reason = a.message;
  } else if (run.timed_out || exit.failure_class == "time_limit") {
    // Terminal: another attempt would meet the same limit.
    a.outcome = "failed";
    a.failure_class = "time_limit";
    a.message = "attempt " + std::to_string(a.number) +
                (job.spec.max_runtime > 0
                     ? " ran past max_runtime (" + std::to_string(static_cast<int64_t>(job.spec.max_runtime)) + " s)"
                     : std::string(" hit the launcher's time limit")) +
                " and was stopped" +
                (exit.signal == 0 && exit.exit_code == kExitPreempted ? " after a checkpoint" : "") + ": " +
                exit.ToString();
    job.state = JobState::kFailed;
    job.reason = a.message + " (raise max_runtime and resubmit; " + logs + ")";
  } else if (run.preempting || exit.failure_class == "preempted" ||
             (!run.hung && exit.failure_class.empty() && exit.signal == 0 && exit.exit_code == kExitPreempted)) {
    const bool checkpointed = exit.signal == 0 && exit.exit_code == kExitPreempted;
    a.outcome = "preempted";
    a.failure_class = "preempted";
    if (run.preempting) {
      a.message = "attempt " + std::to_string(a.number) + " preempted for job " + run.preempt_for +
                  (checkpointed ? "; checkpointed and stopped" : "; stopped without a checkpoint (" + exit.ToString() + ")");
    } else {
      a.message = "attempt " + std::to_string(a.number) + " checkpointed and stopped on SIGTERM";
    }
    job.state = JobState::kPreempted;
    job.reason = (run.preempting ? "preempted for job " + run.preempt_for + " during attempt "
                                 : std::string("preempted during attempt ")) +
                 std::to_string(a.number) + "; requeued";
  } else {
    a.outcome = "failed";
    if (run.hung) {
      a.failure_class = "hang";
      a.message = "attempt " + std::to_string(a.number) + " hung: " + run.hung_message;
    } else {
      a.failure_class = !exit.failure_class.empty() ? exit.failure_class : exit.signal ? "signal" : "exit_code";
      a.message = "attempt " + std::to_string(a.number) + " failed: " + exit.ToString();
      a.message += exclusions_.Exclude(job.id, exit.lost_hosts, a.number, a.failure_class);  // "" if none lost
      if (exit.signal == SIGKILL && exit.failure_class.empty()) a.message += " (killed from outside: out of memory?)";
    }
    if (job.restarts < job.spec.restart.max_restarts) {
      job.state = JobState::kRestarting;
      job.restarts++;
      job.not_before = now + job.spec.restart.backoff_seconds;
      job.reason = a.message + "; restart " + std::to_string(job.restarts) + " of " +
                   std::to_string(job.spec.restart.max_restarts) + " in " +
                   std::to_string(static_cast<int>(job.spec.restart.backoff_seconds)) + " s";
    } else {
      job.state = JobState::kFailed;
      job.reason = a.message + " (" + logs + ")";
    }
  }
  if (IsTerminal(job.state)) job.finished_at = now;
  if (Status s = store_.UpdateAttempt(a); !s.ok()) {
    Status err = s.WithContext("persisting the end of attempt " + std::to_string(a.number) + " of job " + job.id);
    spdlog::error("{}; retried on the next tick", err.ToString());
    return err;
  }
  GANTRY_RETURN_IF_ERROR(Save(current, std::move(job)));
  run.attempt = std::move(a);
  spdlog::info("job {} attempt {} ended ({}): {}", current.id, run.attempt.number, exit.ToString(),
               JobStateName(current.state));
  return Status::Ok();
}

void Coordinator::Schedule() {
  std::vector<Job*> candidates;
  const double wall = clock_.WallSeconds();
  const auto now = clock_.Now();
  for (auto& [id, job] : active_) {
    if (job.state == JobState::kQueued || job.state == JobState::kPreempted ||
        (job.state == JobState::kRestarting && job.not_before <= wall)) {
      candidates.push_back(&job);
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const Job* a, const Job* b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->seq < b->seq;
  });
  // Per pool: the running attempts' ends (EASY's view) and, for estimates,
  // those plus the planned starts of the jobs waiting ahead.
  struct PoolPlan {
    Forecast running;
    Forecast planned;
    const Job* head = nullptr;
    int head_need = 0;
    double head_start = kNever;
  };
  std::map<Pool, PoolPlan> plans;
  for (Pool p : {Pool::kCpu, Pool::kGpu}) {
    std::vector<Hold> holds;
    for (const auto& [id, run] : running_) {
      if (run.placement.pool == p && !run.placement.ranks.empty()) {
        holds.push_back({run.placement.slots(), 0, std::max(0.0, EndsIn(active_.at(id), run, now))});
      }
    }
    plans.emplace(p, PoolPlan{Forecast(slots_.Total(p), holds), Forecast(slots_.Total(p), holds), nullptr, 0, kNever});
  }
  for (Job* job : candidates) {
    const Pool pool = PoolOf(job->spec);
    PoolPlan& plan = plans.at(pool);
    const int need = job->spec.SlotsNeeded();
    const int free = slots_.Free(pool);
    const double runtime = job->spec.max_runtime > 0 ? job->spec.max_runtime : kNever;
    const std::set<std::string> excluded = exclusions_.Of(job->id);  // hosts it lost (host_exclusions.h)
    std::optional<Placement> placement = slots_.Place(job->spec, excluded);
    std::string reason;
    double start = kNever;
    if (plan.head == nullptr) {
      if (placement) {
        plan.running.Add({need, 0, runtime});
        plan.planned.Add({need, 0, runtime});
        StartAttempt(*job, *placement);  // may erase *job (launch failure)
        continue;
      }
      reason = "waiting for " + SlotCount(std::max(1, need - free), pool) + ": needs " + std::to_string(need) +
               ", " + std::to_string(free) + " of " + std::to_string(slots_.Total(pool)) + " free";
      // Pool-wide victims could free slots only on hosts it may not use.
      if (options_.scheduler.preemption && excluded.empty()) {
        if (std::string victims = Preempt(*job, job->spec, free); !victims.empty()) reason = victims;
      }
      plan.head = job;
      plan.head_need = need;
      // Recomputed: preemption shortens the victims' ends to the stop grace.
      std::vector<Hold> holds;
      for (const auto& [id, run] : running_) {
        if (run.placement.pool == pool && !run.placement.ranks.empty()) {
          holds.push_back({run.placement.slots(), 0, std::max(0.0, EndsIn(active_.at(id), run, now))});
        }
      }
      plan.running = Forecast(slots_.Total(pool), holds);
      plan.planned = Forecast(slots_.Total(pool), holds);
      start = plan.planned.EarliestStart(need, runtime);
      plan.head_start = start;
    } else {
      const bool delays = plan.running.DelaysHead(plan.head_need, need, runtime);
      if (placement && options_.scheduler.backfill && !delays) {
        spdlog::info("job {}: backfilled ahead of job {} (cannot delay its reservation)", job->id, plan.head->id);
        plan.running.Add({need, 0, runtime});
        plan.planned.Add({need, 0, runtime});
        StartAttempt(*job, *placement);
        continue;
      }
      if (!placement) {
        reason = "waiting for " + SlotCount(std::max(1, need - free), pool) + ": needs " + std::to_string(need) +
                 ", " + std::to_string(free) + " of " + std::to_string(slots_.Total(pool)) + " free";
      } else if (options_.scheduler.backfill) {
        reason = "behind job " + plan.head->id + " (reservation: starting now could delay it" +
                 (runtime == kNever ? "; declare max_runtime to let it backfill)" : ")");
      } else {
        reason = "behind job " + plan.head->id + " (queue order; backfill is off)";
      }
      start = plan.planned.EarliestStart(need, runtime);
      // It does not start before the head it waits behind.
      if (placement) start = std::max(start, plan.head_start);
    }
    if (start != kNever) plan.planned.Add({need, start, start + runtime});
    job->estimated_start = start == kNever ? 0 : wall + start;
    if (!placement && !excluded.empty()) reason = exclusions_.WaitReason(job->id, excluded, slots_, job->spec);
    SetReason(*job, reason);
  }
}

std::string Coordinator::Preempt(const Job& job, const JobSpec& spec, int free) {
  const Pool pool = PoolOf(spec);
  const int need = spec.SlotsNeeded();
  const auto now = clock_.Now();
  const auto grace = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(options_.scheduler.preempt_grace_seconds));
  // Victims already leaving for it: wait for them.
  std::vector<std::string> leaving;
  for (const auto& [id, run] : running_) {
    if (run.preempting && run.preempt_for == job.id) leaving.push_back(id);
  }
  if (!leaving.empty()) return "preempting job" + std::string(leaving.size() > 1 ? "s " : " ") + JoinIds(leaving);
  if (auto it = preempt_asked_.find(job.id); it != preempt_asked_.end() && now - it->second < grace) return "";
  std::vector<Candidate> candidates;
  for (const auto& [id, run] : running_) {
    if (run.stopping || run.placement.pool != pool || run.placement.ranks.empty()) continue;
    if (auto it = preempted_at_.find(id); it != preempted_at_.end() && now - it->second < grace) continue;
    candidates.push_back({id, active_.at(id).priority, run.placement.slots(), Seconds(now - run.started)});
  }
  std::vector<Candidate> victims = ChooseVictims(std::move(candidates), job.priority, need, free);
  if (victims.empty()) return "";
  preempt_asked_[job.id] = now;
  std::vector<std::string> ids;
  for (const Candidate& v : victims) {
    Running& run = running_.at(v.job_id);
    spdlog::info("job {} (priority {}) preempts job {} (priority {}, {})", job.id, job.priority, v.job_id,
                 v.priority, SlotCount(v.slots, pool));
    run.preempting = true;
    run.preempt_for = job.id;
    run.stopping = true;
    run.stop_sent = now;
    run.launch->RequestPreempt();
    preempted_at_[v.job_id] = now;
    ids.push_back(v.job_id);
    SetReason(active_.at(v.job_id), "being preempted for job " + job.id + " (priority " +
                                        std::to_string(job.priority) + "): checkpointing");
  }
  return "preempting job" + std::string(ids.size() > 1 ? "s " : " ") + JoinIds(ids);
}

void Coordinator::StartAttempt(Job& job, const Placement& placement) {
  double now = clock_.WallSeconds();
  const Job before = job;
  Job next = job;
  next.attempt++;
  next.state = JobState::kScheduled;
  next.reason = "launching attempt " + std::to_string(next.attempt);
  next.started_at = now;
  if (!Save(job, std::move(next)).ok()) return;  // still queued; tried again next tick

  LaunchRequest req;
  req.job_id = job.id;
  req.attempt = job.attempt;
  req.workers = job.spec.resources.workers;
  req.threads_per_worker = job.spec.train.threads;
  req.log_dir = dir_.AttemptDir(job.id, job.attempt);
  req.spec_path = dir_.JobDir(job.id) + "/spec.json";
  req.storage_endpoint = options_.storage_endpoint;
  req.monitor_endpoint = options_.monitor_endpoint;
  req.coordinator_endpoint = options_.coordinator_endpoint;
  req.gpus = placement.GpuLists();
  req.hosts = placement.Hosts();

  Attempt a;
  a.job_id = job.id;
  a.number = job.attempt;
  a.started_at = now;
  a.log_dir = req.log_dir;

  // The attempt is recorded before anything runs, so a crash after the
  // launch finds it (Recover) and nothing runs that the store does not know.
  Status s = store_.InsertAttempt(a);
  if (!s.ok()) {
    spdlog::error("job {}: recording attempt {}: {}; the job is requeued", job.id, a.number, s.ToString());
    Job back = before;
    back.reason = "requeued: could not record attempt " + std::to_string(a.number) + ": " + s.message();
    if (!Save(job, std::move(back)).ok()) job = before;  // Recover requeues what the store still says
    return;
  }
  s = MakeDirs(req.log_dir);
  if (s.ok()) s = WriteFileAtomic(req.spec_path, job.spec.ToJson().dump(2) + "\n");
  if (s.ok()) s = WriteFileAtomic(req.log_dir + "/" + kPlacementFile, placement.ToJson().dump() + "\n");
  Result<std::unique_ptr<Launch>> launch = s.ok() ? launcher_.Start(req) : Result<std::unique_ptr<Launch>>(s);
  if (!launch.ok()) {
    a.ended_at = now;
    a.outcome = "failed";
    a.failure_class = "launch_error";
    a.message = launch.status().message();
    Job failed = job;
    failed.state = JobState::kFailed;
    failed.finished_at = now;
    failed.reason = "launch failed: " + launch.status().message();
    Status st = store_.UpdateAttempt(a);
    if (st.ok()) st = Save(job, std::move(failed));
    if (!st.ok()) {
      // Nothing runs; leave the job schedulable so the launch is tried again.
      spdlog::error("job {}: recording the failed launch: {}", job.id, st.ToString());
      job = before;
      return;
    }
    spdlog::error("job {}: {}", job.id, job.reason);
    active_.erase(job.id);  // `job` dangles after this line
    return;
  }
  a.pid = (*launch)->pid();
  a.pgid = (*launch)->pgid();
  Job running = job;
  running.state = JobState::kRunning;
  running.reason = "running attempt " + std::to_string(running.attempt) + " on " +
                   Plural(running.spec.resources.workers, "worker");
  Status st = store_.UpdateAttempt(a);
  if (st.ok()) st = Save(job, std::move(running));
  if (!st.ok()) {
    // An attempt the store cannot track must not run: stop it now.
    spdlog::error("job {}: recording the start of attempt {}: {}; killing it", job.id, a.number, st.ToString());
    (*launch)->Kill();
    job = before;
    return;
  }
  slots_.Take(placement);
  job.gpus = req.gpus;
  job.estimated_start = 0;
  spdlog::info("job {} attempt {} started (pid {}{})", job.id, job.attempt, a.pid,
               req.gpus.empty() ? std::string() : ", gpus " + JoinIds(req.gpus));
  Running run;
  run.placement = placement;
  run.launch = std::move(launch).value();
  run.attempt = std::move(a);
  run.started = run.last_heartbeat = clock_.Now();
  running_.emplace(job.id, std::move(run));
}

Status Coordinator::Interrupt(Job& job, Attempt a, const ExitInfo& exit, const std::string& failure_class,
                              const std::string& what) {
  a.ended_at = clock_.WallSeconds();
  a.exit_code = exit.exit_code;
  a.signal = exit.signal;
  bool checkpointed = exit.signal == 0 && exit.exit_code == kExitPreempted;
  a.outcome = checkpointed ? "preempted" : "interrupted";
  a.failure_class = failure_class;
  a.message = what + " during this attempt" + (checkpointed ? " (it checkpointed first)" : "");
  GANTRY_RETURN_IF_ERROR(store_.UpdateAttempt(a).WithContext("persisting attempt " + std::to_string(a.number) +
                                                             " of job " + job.id));
  Job next = job;
  if (job.cancel_requested) {
    next.state = JobState::kCancelled;
    next.finished_at = a.ended_at;
    next.reason = "cancelled";
  } else {
    next.state = JobState::kQueued;
    next.reason = "requeued: " + what + " during attempt " + std::to_string(a.number);
  }
  return Save(job, std::move(next));
}

void Coordinator::Shutdown() {
  // Preempt rather than stop: the ranks checkpoint, so the requeued job
  // resumes where it was instead of starting over.
  for (auto& [id, run] : running_) {
    run.stopping = true;
    run.stop_sent = clock_.Now();
    if (active_.at(id).cancel_requested) {
      run.launch->RequestStop();
    } else {
      run.launch->RequestPreempt();
    }
  }
  auto deadline = std::chrono::steady_clock::now() + options_.stop_grace;
  // Wall-clock wait (not the injected clock): real processes are exiting.
  while (!running_.empty() && std::chrono::steady_clock::now() < deadline) {
    bool all_done = true;
    for (auto& [id, run] : running_) all_done &= run.launch->Poll().has_value();
    if (all_done) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& [id, run] : running_) {
    ExitInfo e = run.launch->Poll().value_or(ExitInfo{});
    if (run.launch->Poll() == std::nullopt) e = run.launch->Kill();
    if (Status s = Interrupt(active_.at(id), run.attempt, e, "cluster_stop", "the cluster stopped"); !s.ok()) {
      // The store still says RUNNING: the next start's Recover() requeues it.
      spdlog::error("job {}: {}", id, s.ToString());
    }
  }
  for (auto& [id, run] : running_) slots_.Release(run.placement);
  running_.clear();
}

}  // namespace gantry::coordinator
