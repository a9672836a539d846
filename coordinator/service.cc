#include "coordinator/service.h"

#include "common/fields.h"

namespace gantry::coordinator {
namespace {

// The wire forms of the coordinator's types (docs/protocol.md, "Coordinator").
json JobJson(const Job& j) {
  json out = {{"job_id", j.id},
          {"name", j.spec.name},
          {"state", JobStateName(j.state)},
          {"priority", j.priority},
          {"workers", j.spec.resources.workers},
          {"slots", j.spec.SlotsNeeded()},
          {"submitted_at", j.submitted_at},
          {"updated_at", j.updated_at},
          {"started_at", j.started_at},
          {"finished_at", j.finished_at},
          {"attempt", j.attempt},
          {"restarts", j.restarts},
          {"model", j.spec.checkpoint.model},
          {"reason", j.reason},
          {"device", j.spec.resources.device},
          {"max_runtime", j.spec.max_runtime},
          // Waiting jobs: the scheduler's expected start (unix seconds), null when unknown.
          {"estimated_start", j.estimated_start > 0 ? json(j.estimated_start) : json(nullptr)}};
  if (!j.gpus.empty()) out["gpus"] = j.gpus;  // running cuda job: each rank's CUDA_VISIBLE_DEVICES
  return out;
}

json AttemptJson(const Attempt& a) {
  return {{"attempt", a.number},   {"started_at", a.started_at},   {"ended_at", a.ended_at},
          {"pid", a.pid},          {"log_dir", a.log_dir},         {"outcome", a.outcome},
          {"failure_class", a.failure_class}, {"exit_code", a.exit_code}, {"signal", a.signal},
          {"message", a.message}};
}

json JobViewJson(const JobView& v) {
  json out = {{"job", JobJson(v.job)}, {"spec", v.job.spec.ToJson()}, {"attempts", json::array()},
              {"job_dir", v.job_dir}};
  for (const auto& a : v.attempts) out["attempts"].push_back(AttemptJson(a));
  if (v.progress) {
    json ranks = json::array();
    for (const auto& r : v.progress->ranks) {
      ranks.push_back({{"rank", r.rank}, {"step", r.step}, {"seconds_since_heartbeat", r.seconds_since_heartbeat}});
    }
    out["progress"] = {{"ranks", ranks}, {"seconds_since_heartbeat", v.progress->seconds_since_heartbeat}};
  }
  return out;
}

json LogChunkJson(LogChunk c) {
  return {{"attempt", c.attempt},
          {"rank", c.rank},
          {"path", c.path},
          {"data", json::binary(std::move(c.data))},
          {"next_offset", c.next_offset},
          {"eof", c.eof}};
}

json ClusterJson(const ClusterView& v) {
  json hosts = json::array();
  for (const auto& h : v.hosts) {
    hosts.push_back({{"name", h.name}, {"cpus", h.cpus}, {"cpus_used", h.cpus_used}, {"gpus", h.gpus},
                     {"gpus_used", h.gpus_used}});
  }
  return {{"slots_total", v.slots_total},
          {"slots_used", v.slots_used},
          {"slots_free", v.slots_free},
          {"gpus_total", v.gpus_total},
          {"gpus_used", v.gpus_used},
          {"gpus_free", v.gpus_free},
          {"hosts", std::move(hosts)},
          {"jobs_running", v.jobs_running},
          {"jobs_queued", v.jobs_queued}};
}

}  // namespace

void RegisterHandlers(RpcServer& server, Coordinator& c) {
  server.Handle("submit_job", [&c](const Request& r) -> Result<json> {
    auto spec = r.body.find("spec");
    if (spec == r.body.end() || !spec->is_object()) {
      return Status::InvalidArgument("submit_job: field 'spec' must be a map holding the job spec");
    }
    GANTRY_ASSIGN_OR_RETURN(std::string request_id, GetRequestId(r.body, "submit_job"));
    GANTRY_ASSIGN_OR_RETURN(Job job, c.Submit(*spec, request_id));
    return json{{"job_id", job.id}, {"state", JobStateName(job.state)}, {"job", JobJson(job)}};
  });
  server.Handle("list_jobs", [&c](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(bool active_only, In(GetBool(r.body, "active_only", false), "list_jobs"));
    GANTRY_ASSIGN_OR_RETURN(int64_t limit, GetInt(r.body, "limit", 50));
    if (limit <= 0 || limit > 100000) return Status::InvalidArgument("field 'limit' must be 1..100000");
    GANTRY_ASSIGN_OR_RETURN(JobListing listing, c.ListJobs(active_only, static_cast<int>(limit)));
    json jobs = json::array();
    for (const auto& j : listing.jobs) jobs.push_back(JobJson(j));
    return json{{"jobs", std::move(jobs)}};
  });
  server.Handle("get_job", [&c](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string id, GetString(r.body, "job_id"));
    GANTRY_ASSIGN_OR_RETURN(JobView view, c.Describe(id));
    return JobViewJson(view);
  });
  server.Handle("cancel_job", [&c](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string id, GetString(r.body, "job_id"));
    GANTRY_ASSIGN_OR_RETURN(Job job, c.Cancel(id));
    return json{{"job_id", job.id}, {"state", JobStateName(job.state)}, {"reason", job.reason}};
  });
  server.Handle("get_logs", [&c](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string id, GetString(r.body, "job_id"));
    GANTRY_ASSIGN_OR_RETURN(int64_t attempt, GetInt(r.body, "attempt", 0));
    GANTRY_ASSIGN_OR_RETURN(int64_t rank, GetInt(r.body, "rank", 0));
    GANTRY_ASSIGN_OR_RETURN(int64_t offset, GetInt(r.body, "offset", 0));
    GANTRY_ASSIGN_OR_RETURN(int64_t max_bytes, GetInt(r.body, "max_bytes", 1 << 20));
    GANTRY_ASSIGN_OR_RETURN(bool launcher, In(GetBool(r.body, "launcher", false), "get_logs"));
    if (max_bytes <= 0 || max_bytes > (1 << 20)) return Status::InvalidArgument("max_bytes must be 1..1048576");
    GANTRY_ASSIGN_OR_RETURN(LogChunk chunk, c.ReadLog(id, static_cast<int>(attempt), static_cast<int>(rank),
                                                      launcher, offset, max_bytes));
    return LogChunkJson(std::move(chunk));
  });
  server.Handle("heartbeat", [&c](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string id, GetString(r.body, "job_id"));
    GANTRY_ASSIGN_OR_RETURN(int64_t attempt, GetInt(r.body, "attempt"));
    GANTRY_ASSIGN_OR_RETURN(int64_t rank, GetInt(r.body, "rank"));
    GANTRY_ASSIGN_OR_RETURN(int64_t step, GetInt(r.body, "step"));
    GANTRY_RETURN_IF_ERROR(c.Heartbeat(id, static_cast<int>(attempt), static_cast<int>(rank), step));
    return json::object();
  });
  server.Handle("cluster_status", [&c](const Request&) -> Result<json> { return ClusterJson(c.ClusterStatus()); });
  server.OnTick([&c] { c.Tick(); });
}

}  // namespace gantry::coordinator
