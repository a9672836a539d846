#include "monitor/read_model.h"

#include <algorithm>
#include <cmath>

namespace gantry::monitor {

void ReadModel::OnPoint(const MetricsPoint& p) {
  std::lock_guard lock(mu_);
  ApplyPoint(p, /*count=*/true);
}

void ReadModel::OnEvent(const JobEvent& e, const std::string& name) {
  std::lock_guard lock(mu_);
  ApplyEvent(e, name, /*count=*/true);
}

void ReadModel::Restore(const std::vector<JobEvent>& events, const std::vector<MetricsPoint>& latest) {
  std::lock_guard lock(mu_);
  for (const JobEvent& e : events) ApplyEvent(e, "", /*count=*/false);
  for (const MetricsPoint& p : latest) ApplyPoint(p, /*count=*/false);
}

void ReadModel::ApplyPoint(const MetricsPoint& p, bool count) {
  if (count) ++points_;
  Job& job = jobs_[p.job_id];
  job.summary.job_id = p.job_id;
  if (p.attempt > job.summary.attempt) {
    job.summary.attempt = p.attempt;
    job.latest.clear();
    job.rank_step_time.clear();
  } else if (p.attempt < job.summary.attempt) {
    return;  // a late point of an older attempt
  }
  job.summary.step = std::max(job.summary.step, p.step);
  if (p.total_steps > 0) job.summary.total_steps = p.total_steps;
  job.summary.updated = std::max(job.summary.updated, p.time);
  bool has_ckpt_step = false, has_ckpt_failed = false;
  for (const auto& [name, value] : p.values) {
    if (name == "checkpoint_step") has_ckpt_step = true;
    if (name == "checkpoint_failed") has_ckpt_failed = true;
    if (name == "step_time") job.rank_step_time[p.rank] = value;
    if (p.rank == 0) job.latest[name] = value;
  }
  if (!count) return;
  if (has_ckpt_failed) {
    ++checkpoints_failed_;
  } else if (has_ckpt_step) {
    ++checkpoints_saved_;
  }
}

void ReadModel::ApplyEvent(const JobEvent& e, const std::string& name, bool count) {
  if (count) ++events_;
  Job& job = jobs_[e.job_id];
  job.summary.job_id = e.job_id;
  job.summary.state = e.state;
  if (!name.empty()) job.summary.name = name;
  if (e.attempt && *e.attempt > job.summary.attempt) job.summary.attempt = *e.attempt;
  job.summary.updated = std::max(job.summary.updated, e.time);
}

void ReadModel::OnDropped() {
  std::lock_guard lock(mu_);
  ++dropped_;
}

std::vector<JobSummary> ReadModel::Jobs() const {
  std::vector<JobSummary> out;
  {
    std::lock_guard lock(mu_);
    out.reserve(jobs_.size());
    for (const auto& [id, job] : jobs_) out.push_back(job.summary);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const JobSummary& a, const JobSummary& b) { return a.updated > b.updated; });
  return out;
}

bool ReadModel::Known(const std::string& job_id) const {
  std::lock_guard lock(mu_);
  return jobs_.count(job_id) > 0;
}

prometheus::MetricsSnapshot ReadModel::Snapshot() const {
  prometheus::MetricsSnapshot snap;
  std::map<std::string, int64_t> by_state;
  for (const char* s : kJobStates) by_state[s] = 0;
  std::lock_guard lock(mu_);
  for (const auto& [id, job] : jobs_) {
    const std::string& state = job.summary.state;
    if (state.empty()) continue;
    ++by_state[state];
    if (state != "RUNNING") continue;  // per-job gauges for running jobs only
    prometheus::RunningJobMetrics r;
    r.job_id = id;
    r.attempt = job.summary.attempt;
    r.step = std::max<int64_t>(job.summary.step, 0);
    auto get = [&](const char* name) -> std::optional<double> {
      auto it = job.latest.find(name);
      if (it == job.latest.end()) return std::nullopt;
      return it->second;
    };
    r.loss = get("loss");
    r.accuracy = get("accuracy");
    r.samples_per_second = get("samples_per_sec");
    if (!r.samples_per_second) r.samples_per_second = get("samples_per_second");
    for (const auto& [rank, seconds] : job.rank_step_time) r.ranks.push_back({rank, seconds});
    snap.running_jobs.push_back(std::move(r));
  }
  for (const auto& [state, n] : by_state) snap.jobs_by_state.emplace_back(state, n);
  snap.queue_depth = by_state["QUEUED"];
  snap.checkpoints_saved = checkpoints_saved_;
  snap.checkpoints_failed = checkpoints_failed_;
  snap.ingest.points = points_;
  snap.ingest.events = events_;
  snap.ingest.dropped = dropped_;
  return snap;
}

}  // namespace gantry::monitor
