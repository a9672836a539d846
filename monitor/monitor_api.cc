#include "monitor/monitor_api.h"

#include "monitor/alerts/alert_json.h"

namespace gantry::monitor {
namespace {

Result<std::string> JobId(const json& body, const char* request) {
  auto id = GetString(body, "job_id");
  if (!id.ok()) return id.status().WithContext(request);
  return id;
}

json PointJson(const MetricsPoint& p) {
  json values = json::object();
  for (const auto& [name, value] : p.values) values[name] = value;
  json j = {{"rank", p.rank}, {"attempt", p.attempt}, {"step", p.step}, {"epoch", p.epoch},
            {"time", p.time}, {"values", std::move(values)}};
  if (p.total_steps > 0) j["total_steps"] = p.total_steps;
  return j;
}

json EventJson(const JobEvent& e) {
  json j = {{"state", e.state}, {"time", e.time}};
  if (e.attempt) j["attempt"] = *e.attempt;
  if (e.reason) j["reason"] = *e.reason;
  return j;
}

Result<json> GetMetrics(MonitorService& service, const json& body) {
  MetricsQuery q;
  GANTRY_ASSIGN_OR_RETURN(q.job_id, JobId(body, "get_metrics"));
  auto after = GetInt(body, "after_step", -1);
  if (!after.ok()) return after.status().WithContext("get_metrics");
  q.after_step = *after;
  auto limit = GetInt(body, "limit", kDefaultMetricsLimit);
  if (!limit.ok()) return limit.status().WithContext("get_metrics");
  q.limit = *limit;
  GANTRY_ASSIGN_OR_RETURN(auto points, service.GetMetrics(q));
  json out = json::array();
  for (const auto& p : points) out.push_back(PointJson(p));
  return json{{"job_id", q.job_id}, {"points", std::move(out)}};
}

Result<json> GetEvents(MonitorService& service, const json& body) {
  GANTRY_ASSIGN_OR_RETURN(std::string job_id, JobId(body, "get_events"));
  GANTRY_ASSIGN_OR_RETURN(auto events, service.GetEvents(job_id));
  json out = json::array();
  for (const auto& e : events) out.push_back(EventJson(e));
  return json{{"job_id", job_id}, {"events", std::move(out)}};
}

json StatsJson(const MonitorStats& s) {
  return {{"points_ingested", s.points_ingested},
          {"events_ingested", s.events_ingested},
          {"messages_dropped", s.messages_dropped},
          {"points_repeated", s.points_repeated},
          {"buffered", s.buffered}};
}

}  // namespace

json AlertApiJson(const alerts::AlertInstance& a) {
  json j = alerts::InstanceToJson(a);
  j["job_id"] = a.key.job;
  j["rank"] = a.key.rank >= 0 ? json(a.key.rank) : json(nullptr);
  return j;
}

void RegisterAlertHandlers(RpcServer& server, const alerts::AlertEngine& engine) {
  server.Handle("get_alerts", [&engine](const Request& r) -> Result<json> {
    auto job = GetString(r.body, "job_id", "");
    if (!job.ok()) return job.status().WithContext("get_alerts");
    json out = json::array();
    for (const auto& a : engine.List()) {
      if (job->empty() || a.key.job == *job) out.push_back(AlertApiJson(a));
    }
    return json{{"alerts", std::move(out)}};
  });
}

void RegisterApiHandlers(RpcServer& server, MonitorService& service) {
  server.Handle("get_metrics", [&service](const Request& r) { return GetMetrics(service, r.body); });
  server.Handle("get_events", [&service](const Request& r) { return GetEvents(service, r.body); });
  server.Handle("stats", [&service](const Request&) -> Result<json> { return StatsJson(service.Stats()); });
}

}  // namespace gantry::monitor
