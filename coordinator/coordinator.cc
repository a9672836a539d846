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

}  // namespace

Coordinator::Coordinator(CoordinatorOptions options, DataDir dir, JobStore store, Launcher& launcher,
                         EventSink& events, RetentionSink& retention, const Clock& clock)
    : options_(std::move(options)),
      dir_(std::move(dir)),
      store_(std::move(store)),
      launcher_(launcher),
      events_(events),
      retention_(retention),
      clock_(clock) {}

Coordinator::~Coordinator() {
  // Running attempts die with their Launch objects; Shutdown() is the clean path.
}

void Coordinator::Save(Job& job) {
  job.updated_at = clock_.WallSeconds();
  if (Status s = store_.Update(job); !s.ok()) {
    spdlog::error("persisting job {}: {}", job.id, s.ToString());
  }
  events_.JobChanged(job, job.updated_at);
}

void Coordinator::SetReason(Job& job, const std::string& reason) {
  if (job.reason == reason) return;
  job.reason = reason;
  Save(job);
}

Status Coordinator::Recover() {
  GANTRY_ASSIGN_OR_RETURN(auto jobs, store_.List(/*active_only=*/true, 1 << 30));
  for (Job& job : jobs) {
    if (job.state == JobState::kScheduled || job.state == JobState::kRunning) {
      GANTRY_ASSIGN_OR_RETURN(auto attempts, store_.Attempts(job.id));
      for (Attempt& a : attempts) {
        if (a.number != job.attempt || !a.outcome.empty()) continue;
        if (a.pid > 0 && LaunchAlive(a.pid, job.id)) {
          spdlog::warn("killing orphaned attempt {} of job {} (pid {})", a.number, job.id, a.pid);
          ::kill(-a.pid, SIGKILL);
        }
        Interrupt(job, a, ExitInfo{}, "coordinator_restart", "the coordinator restarted");
      }
      spdlog::info("job {} -> {} ({})", job.id, JobStateName(job.state), job.reason);
    }
    if (!IsTerminal(job.state)) active_.emplace(job.id, std::move(job));
  }
  spdlog::info("recovered {} active jobs", active_.size());
  return Status::Ok();
}

Result<Job> Coordinator::Submit(const json& spec_json) {
  GANTRY_ASSIGN_OR_RETURN(JobSpec spec, JobSpec::Parse(spec_json));
  GANTRY_RETURN_IF_ERROR(spec.CheckFiles());
  if (spec.SlotsNeeded() > options_.slots) {
    return Status::InvalidArgument(
        "job spec: resources.workers needs " + Plural(spec.SlotsNeeded(), "slot") +
        " (workers x slots_per_worker) but this cluster has only " + Plural(options_.slots, "slot") +
        "; lower resources.workers or start the cluster with more slots (gantry up --slots N)");
  }
  if (spec.resources.device == "cuda") {
    return Status::InvalidArgument(
        "job spec: resources.device is cuda but this cluster declares no GPU slots; use cpu");
  }
  GANTRY_RETURN_IF_ERROR(retention_.Apply(spec));
  Job job;
  job.id = NewJobId(clock_);
  job.spec = std::move(spec);
  job.priority = job.spec.priority;
  job.submitted_at = job.updated_at = clock_.WallSeconds();
  job.reason = "queued";
  GANTRY_RETURN_IF_ERROR(store_.Insert(job));
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
  job.cancel_requested = true;
  auto run = running_.find(job_id);
  if (run == running_.end()) {
    job.state = JobState::kCancelled;
    job.finished_at = clock_.WallSeconds();
    job.reason = "cancelled before it ran";
    Save(job);
    Job out = job;
    active_.erase(it);
    return out;
  }
  job.reason = "cancelling: stopping workers";
  Save(job);
  RequestStop(run->second);
  return job;
}

void Coordinator::RequestStop(Running& run) {
  if (run.stopping) return;
  run.stopping = true;
  run.stop_sent = clock_.Now();
  run.launch->RequestStop();
}

Result<json> Coordinator::Describe(const std::string& job_id) {
  Job job;
  if (auto it = active_.find(job_id); it != active_.end()) {
    job = it->second;
  } else {
    GANTRY_ASSIGN_OR_RETURN(job, store_.Get(job_id));
  }
  GANTRY_ASSIGN_OR_RETURN(auto attempts, store_.Attempts(job_id));
  json out = {{"job", job.ToJson()}, {"spec", job.spec.ToJson()}, {"attempts", json::array()}};
  for (const auto& a : attempts) out["attempts"].push_back(a.ToJson());
  out["job_dir"] = dir_.JobDir(job_id);
  if (auto run = running_.find(job_id); run != running_.end()) {
    auto now = clock_.Now();
    json ranks = json::array();
    for (const auto& [rank, p] : run->second.ranks) {
      ranks.push_back({{"rank", rank}, {"step", p.step},
                       {"seconds_since_heartbeat", std::chrono::duration<double>(now - p.seen).count()}});
    }
    out["progress"] = {{"ranks", ranks},
                       {"seconds_since_heartbeat",
                        std::chrono::duration<double>(now - run->second.last_heartbeat).count()}};
  }
  return out;
}

Result<json> Coordinator::ReadLog(const std::string& job_id, int attempt, int rank, bool launcher,
                                  int64_t offset, int64_t max_bytes) {
  Job job;
  if (auto it = active_.find(job_id); it != active_.end()) {
    job = it->second;
  } else {
    GANTRY_ASSIGN_OR_RETURN(job, store_.Get(job_id));
  }
  if (job.attempt == 0) {
    return Status::NotFound("job " + job_id + " has not started yet (" + std::string(JobStateName(job.state)) +
                            ": " + job.reason + ")");
  }
  if (attempt <= 0) attempt = job.attempt;
  if (attempt > job.attempt) {
    return Status::NotFound("job " + job_id + " has " + std::to_string(job.attempt) + " attempt(s), not " +
                            std::to_string(attempt));
  }
  if (rank < 0 || rank >= job.spec.resources.workers) {
    return Status::InvalidArgument("rank must be 0.." + std::to_string(job.spec.resources.workers - 1));
  }
  std::string path = dir_.AttemptDir(job_id, attempt) + "/" +
                     (launcher ? std::string("launcher.log") : "rank-" + std::to_string(rank) + ".log");
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::NotFound("no log yet at " + path);
  std::fseek(f, 0, SEEK_END);
  int64_t size = std::ftell(f);
  offset = std::clamp<int64_t>(offset, 0, size);
  int64_t n = std::min(max_bytes, size - offset);
  std::vector<uint8_t> data(static_cast<size_t>(n));
  std::fseek(f, offset, SEEK_SET);
  size_t got = std::fread(data.data(), 1, data.size(), f);
  std::fclose(f);
  data.resize(got);
  return json{{"attempt", attempt},
              {"rank", rank},
              {"path", path},
              {"data", json::binary(std::move(data))},
              {"next_offset", offset + static_cast<int64_t>(got)},
              {"eof", offset + static_cast<int64_t>(got) >= size}};
}

Result<json> Coordinator::ListJobs(bool active_only, int limit) {
  GANTRY_ASSIGN_OR_RETURN(auto jobs, store_.List(active_only, limit));
  json arr = json::array();
  for (auto& j : jobs) {
    // The in-memory copy is fresher for active jobs (reasons are cached).
    auto it = active_.find(j.id);
    arr.push_back((it != active_.end() ? it->second : j).ToJson());
  }
  return json{{"jobs", arr}};
}

json Coordinator::ClusterStatus() const {
  int queued = 0;
  for (const auto& [id, j] : active_) {
    if (j.state == JobState::kQueued || j.state == JobState::kRestarting || j.state == JobState::kPreempted) ++queued;
  }
  return {{"slots_total", options_.slots},
          {"slots_used", slots_used_},
          {"slots_free", options_.slots - slots_used_},
          {"jobs_running", running_.size()},
          {"jobs_queued", queued}};
}

void Coordinator::Tick() {
  Reap();
  Schedule();
}

void Coordinator::Reap() {
  auto now = clock_.Now();
  std::vector<std::string> done;
  for (auto& [id, run] : running_) {
    if (auto exit = run.launch->Poll()) {
      Settle(active_.at(id), run, *exit);
      done.push_back(id);
    } else if (run.stopping && now - run.stop_sent >= options_.stop_grace) {
      spdlog::warn("job {}: workers ignored SIGTERM for {} ms, killing", id, options_.stop_grace.count());
      ExitInfo e = run.launch->Kill();
      Settle(active_.at(id), run, e);
      done.push_back(id);
    } else if (!run.stopping && HungFor(active_.at(id), run, now) > 0) {
      double silent = HungFor(active_.at(id), run, now);
      spdlog::warn("job {}: no heartbeat for {:.0f} s, killing attempt {} as hung", id, silent, run.attempt.number);
      run.hung = true;
      run.attempt.message = "no heartbeat for " + std::to_string(static_cast<int>(silent)) + " s";
      ExitInfo e = run.launch->Kill();
      Settle(active_.at(id), run, e);
      done.push_back(id);
    }
  }
  for (const auto& id : done) {
    slots_used_ -= active_.at(id).spec.SlotsNeeded();
    running_.erase(id);
    if (IsTerminal(active_.at(id).state)) active_.erase(id);
  }
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

void Coordinator::Settle(Job& job, Running& run, const ExitInfo& exit) {
  double now = clock_.WallSeconds();
  Attempt& a = run.attempt;
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
  } else if (!run.hung && exit.signal == 0 && exit.exit_code == kExitPreempted) {
    a.outcome = "preempted";
    a.failure_class = "preempted";
    a.message = "attempt " + std::to_string(a.number) + " checkpointed and stopped on SIGTERM";
    job.state = JobState::kPreempted;
    job.reason = "preempted during attempt " + std::to_string(a.number) + "; requeued";
  } else {
    a.outcome = "failed";
    if (run.hung) {
      a.failure_class = "hang";
      a.message = "attempt " + std::to_string(a.number) + " hung: " + a.message;
    } else {
      a.failure_class = exit.signal ? "signal" : "exit_code";
      a.message = "attempt " + std::to_string(a.number) + " failed: " + exit.ToString();
      if (exit.signal == SIGKILL) a.message += " (killed from outside: out of memory?)";
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
  if (Status s = store_.UpdateAttempt(a); !s.ok()) spdlog::error("persisting attempt: {}", s.ToString());
  Save(job);
  spdlog::info("job {} attempt {} ended ({}): {}", job.id, a.number, exit.ToString(), JobStateName(job.state));
}

void Coordinator::Schedule() {
  std::vector<Job*> candidates;
  double now = clock_.WallSeconds();
  for (auto& [id, job] : active_) {
    if (job.state == JobState::kQueued || job.state == JobState::kPreempted ||
        (job.state == JobState::kRestarting && job.not_before <= now)) {
      candidates.push_back(&job);
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const Job* a, const Job* b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->seq < b->seq;
  });
  const Job* head = nullptr;
  for (Job* job : candidates) {
    int need = job->spec.SlotsNeeded();
    int free = options_.slots - slots_used_;
    if (head) {
      SetReason(*job, "waiting behind job " + head->id + " (higher priority or submitted earlier)");
    } else if (need <= free) {
      StartAttempt(*job);
    } else {
      SetReason(*job, "waiting for free slots: needs " + std::to_string(need) + ", " +
                          std::to_string(free) + " of " + std::to_string(options_.slots) + " free");
      head = job;
    }
  }
}

void Coordinator::StartAttempt(Job& job) {
  double now = clock_.WallSeconds();
  job.attempt++;
  job.state = JobState::kScheduled;
  job.reason = "launching attempt " + std::to_string(job.attempt);
  job.started_at = now;
  Save(job);

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

  Attempt a;
  a.job_id = job.id;
  a.number = job.attempt;
  a.started_at = now;
  a.log_dir = req.log_dir;

  Status s = MakeDirs(req.log_dir);
  if (s.ok()) s = WriteFileAtomic(req.spec_path, job.spec.ToJson().dump(2) + "\n");
  Result<std::unique_ptr<Launch>> launch = s.ok() ? launcher_.Start(req) : Result<std::unique_ptr<Launch>>(s);
  if (!launch.ok()) {
    (void)store_.InsertAttempt(a);
    a.ended_at = now;
    a.outcome = "failed";
    a.failure_class = "launch_error";
    a.message = launch.status().message();
    (void)store_.UpdateAttempt(a);
    job.state = JobState::kFailed;
    job.finished_at = now;
    job.reason = "launch failed: " + launch.status().message();
    Save(job);
    spdlog::error("job {}: {}", job.id, job.reason);
    active_.erase(job.id);  // `job` dangles after this line
    return;
  }
  a.pid = (*launch)->pid();
  if (Status st = store_.InsertAttempt(a); !st.ok()) spdlog::error("persisting attempt: {}", st.ToString());
  job.state = JobState::kRunning;
  job.reason = "running attempt " + std::to_string(job.attempt) + " on " +
               Plural(job.spec.resources.workers, "worker");
  Save(job);
  slots_used_ += job.spec.SlotsNeeded();
  spdlog::info("job {} attempt {} started (pid {})", job.id, job.attempt, a.pid);
  Running run;
  run.launch = std::move(launch).value();
  run.attempt = std::move(a);
  run.started = run.last_heartbeat = clock_.Now();
  running_.emplace(job.id, std::move(run));
}

void Coordinator::Interrupt(Job& job, Attempt& a, const ExitInfo& exit, const std::string& failure_class,
                            const std::string& what) {
  a.ended_at = clock_.WallSeconds();
  a.exit_code = exit.exit_code;
  a.signal = exit.signal;
  bool checkpointed = exit.signal == 0 && exit.exit_code == kExitPreempted;
  a.outcome = checkpointed ? "preempted" : "interrupted";
  a.failure_class = failure_class;
  a.message = what + " during this attempt" + (checkpointed ? " (it checkpointed first)" : "");
  (void)store_.UpdateAttempt(a);
  if (job.cancel_requested) {
    job.state = JobState::kCancelled;
    job.finished_at = a.ended_at;
    job.reason = "cancelled";
  } else {
    job.state = JobState::kQueued;
    job.reason = "requeued: " + what + " during attempt " + std::to_string(a.number);
  }
  Save(job);
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
    Interrupt(active_.at(id), run.attempt, e, "cluster_stop", "the cluster stopped");
  }
  running_.clear();
  slots_used_ = 0;
}

}  // namespace gantry::coordinator
