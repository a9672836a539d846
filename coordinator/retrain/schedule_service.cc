#include "coordinator/retrain/schedule_service.h"

#include "common/fields.h"

namespace gantry::coordinator {
namespace {

template <typename T>
json OrNull(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

double Seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

json ScheduleJson(const ScheduleRecord& r) {
  return {{"name", r.spec.name},
          {"model", r.spec.model},
          {"champion", r.spec.champion},
          {"paused", r.paused},
          {"created_at", r.created_at},
          {"last_cron_at", OrNull(r.last_cron_at)},
          {"spec", r.spec.ToJson()}};
}

json RunJson(const RunRecord& r) {
  json triggers = json::array();
  for (const Trigger& t : r.triggers) {
    triggers.push_back({{"kind", TriggerKindName(t.kind)}, {"detail", t.detail}, {"at", Seconds(t.at)}});
  }
  json out = {{"seq", r.seq},
              {"schedule", r.schedule},
              {"job_id", r.job_id},
              {"state", RunStateName(r.state)},
              {"triggers", triggers},
              {"files", r.files},
              {"started_at", r.started_at},
              {"finished_at", OrNull(r.finished_at)},
              {"error", r.error},
              {"decision", nullptr}};
  if (r.decision) {
    const RunDecision& d = *r.decision;
    out["decision"] = {{"promote", d.promote},
                       {"reason", d.reason},
                       {"metric", d.metric},
                       {"champion_version", OrNull(d.champion_version)},
                       {"challenger_version", OrNull(d.challenger_version)},
                       {"champion_value", OrNull(d.champion_value)},
                       {"challenger_value", OrNull(d.challenger_value)},
                       {"data_fingerprint", d.data_fingerprint}};
  }
  return out;
}

void RegisterScheduleHandlers(RpcServer& server, Schedules& s) {
  server.Handle("schedule_add", [&s](const Request& r) -> Result<json> {
    auto spec = r.body.find("spec");
    if (spec == r.body.end() || !spec->is_object()) {
      return Status::InvalidArgument("schedule_add: field 'spec' must be a map holding the schedule");
    }
    GANTRY_ASSIGN_OR_RETURN(ScheduleRecord rec, s.Add(*spec));
    return json{{"schedule", ScheduleJson(rec)}};
  });
  server.Handle("schedule_list", [&s](const Request&) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(auto all, s.List());
    json out = json::array();
    for (const ScheduleRecord& rec : all) {
      json j = ScheduleJson(rec);
      GANTRY_ASSIGN_OR_RETURN(auto history, s.History(rec.spec.name));
      j["runs"] = history.size();
      j["last_run"] = history.empty() ? json(nullptr) : RunJson(history.back());
      out.push_back(std::move(j));
    }
    return json{{"schedules", std::move(out)}};
  });
  server.Handle("schedule_show", [&s](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string name, In(GetString(r.body, "name"), "schedule_show"));
    GANTRY_ASSIGN_OR_RETURN(ScheduleRecord rec, s.Get(name));
    GANTRY_ASSIGN_OR_RETURN(auto history, s.History(name));
    json j = ScheduleJson(rec);
    j["runs"] = history.size();
    j["last_run"] = history.empty() ? json(nullptr) : RunJson(history.back());
    GANTRY_ASSIGN_OR_RETURN(auto active, s.ActiveRun(name));
    j["active_run"] = active ? RunJson(*active) : json(nullptr);
    return json{{"schedule", std::move(j)}};
  });
  for (const bool pause : {true, false}) {
    const std::string type = pause ? "schedule_pause" : "schedule_resume";
    server.Handle(type, [&s, pause, type](const Request& r) -> Result<json> {
      GANTRY_ASSIGN_OR_RETURN(std::string name, In(GetString(r.body, "name"), type));
      GANTRY_RETURN_IF_ERROR(s.SetPaused(name, pause));
      return json{{"name", name}, {"paused", pause}};
    });
  }
  server.Handle("schedule_rm", [&s](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string name, In(GetString(r.body, "name"), "schedule_rm"));
    GANTRY_RETURN_IF_ERROR(s.Remove(name));
    return json{{"name", name}, {"removed", true}};
  });
  server.Handle("schedule_trigger", [&s](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string name, In(GetString(r.body, "name"), "schedule_trigger"));
    GANTRY_RETURN_IF_ERROR(s.Trigger(name));
    return json{{"name", name}, {"triggered", true}};
  });
  server.Handle("schedule_history", [&s](const Request& r) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string name, In(GetString(r.body, "name"), "schedule_history"));
    GANTRY_ASSIGN_OR_RETURN(auto history, s.History(name));
    json runs = json::array();
    for (const RunRecord& run : history) runs.push_back(RunJson(run));
    return json{{"name", name}, {"runs", std::move(runs)}};
  });
  server.Handle("schedule_alert", [&s](const Request& r) -> Result<json> {
    const char* what = "schedule_alert";
    AlertSignal a;
    GANTRY_ASSIGN_OR_RETURN(a.rule, In(GetString(r.body, "rule"), what));
    GANTRY_ASSIGN_OR_RETURN(a.kind, In(GetString(r.body, "kind", ""), what));
    GANTRY_ASSIGN_OR_RETURN(a.source, In(GetString(r.body, "source", ""), what));
    GANTRY_ASSIGN_OR_RETURN(a.model, In(GetString(r.body, "model", ""), what));
    GANTRY_ASSIGN_OR_RETURN(a.why, In(GetString(r.body, "why", ""), what));
    s.OnAlert(std::move(a));
    return json::object();
  });
}

}  // namespace gantry::coordinator
