#include "coordinator/service.h"

namespace gantry::coordinator {

void RegisterHandlers(RpcServer& server, Coordinator& c) {
  server.Handle("submit_job", [&c](const Request& r) -> Result<json> {
    auto spec = r.body.find("spec");
    if (spec == r.body.end() || !spec->is_object()) {
      return Status::InvalidArgument("submit_job: field 'spec' must be a map holding the job spec");
    }
    GANTRY_ASSIGN_OR_RETURN(Job job, c.Submit(*spec));
    return json{{"job_id", job.id}, {"state", JobStateName(job.state)}, {"job", job.ToJson()}};
  });
  server.Handle("list_jobs", [&c](const Request& r) -> Result<json> {
    bool active_only = false;
    if (auto it = r.body.find("active_only"); it != r.body.end()) {
      if (!it->is_boolean()) return Status::InvalidArgument("field 'active_only' must be true or false");
      active_only = it->get<bool>();
    }
    GANTRY_ASSIGN_OR_RETURN(int64_t limit, GetInt(r.body, "limit", 50));
    if (limit <= 0 || limit > 100000) return Status::InvalidArgument("field 'limit' must be 1..100000");
    return c.ListJobs(active_only, static_cast<int>(limit));
  });
  server.Handle("get_job", [&c](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string id, GetString(r.body, "job_id"));
    return c.Describe(id);
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
    bool launcher = false;
    if (auto it = r.body.find("launcher"); it != r.body.end() && it->is_boolean()) launcher = it->get<bool>();
    if (max_bytes <= 0 || max_bytes > (1 << 20)) return Status::InvalidArgument("max_bytes must be 1..1048576");
    return c.ReadLog(id, static_cast<int>(attempt), static_cast<int>(rank), launcher, offset, max_bytes);
  });
  server.Handle("heartbeat", [&c](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string id, GetString(r.body, "job_id"));
    GANTRY_ASSIGN_OR_RETURN(int64_t attempt, GetInt(r.body, "attempt"));
    GANTRY_ASSIGN_OR_RETURN(int64_t rank, GetInt(r.body, "rank"));
    GANTRY_ASSIGN_OR_RETURN(int64_t step, GetInt(r.body, "step"));
    GANTRY_RETURN_IF_ERROR(c.Heartbeat(id, static_cast<int>(attempt), static_cast<int>(rank), step));
    return json::object();
  });
  server.Handle("cluster_status", [&c](const Request&) -> Result<json> { return c.ClusterStatus(); });
  server.OnTick([&c] { c.Tick(); });
}

}  // namespace gantry::coordinator
