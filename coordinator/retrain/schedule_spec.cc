#include "coordinator/retrain/schedule_spec.h"

#include <filesystem>

#include "common/config.h"
#include "common/ids.h"

namespace gantry::coordinator {
namespace {

constexpr const char* kWhat = "schedule";

Status ParseJob(FieldReader& r, const json& j, const std::string& base_dir, ScheduleSpec& s) {
  if (!r.Has("job")) {
    r.Fail("job", "is required: a job spec (inline) or the path of its YAML file");
    return Status::Ok();
  }
  json job;
  r.Get("job", job);
  std::string job_dir = base_dir;
  if (job.is_string()) {
    std::filesystem::path p(job.get<std::string>());
    if (p.is_relative() && !base_dir.empty()) p = std::filesystem::path(base_dir) / p;
    auto loaded = LoadYamlFile(p.string());
    if (!loaded.ok()) {
      r.Fail("job", "cannot read " + p.string() + ": " + loaded.status().message());
      return Status::Ok();
    }
    job = std::move(loaded).value();
    job_dir = p.parent_path().string();
  } else if (!job.is_object()) {
    r.Fail("job", "must be a job spec or the path of one");
    return Status::Ok();
  }
  auto spec = JobSpec::Parse(job, job_dir);
  if (!spec.ok()) {
    // "job spec: train.batch_size must be > 0" reads right after "schedule: ".
    std::string why = spec.status().message();
    if (why.rfind("job spec: ", 0) == 0) why = why.substr(10);
    r.Fail("job", "spec: " + why);
    return Status::Ok();
  }
  s.job = std::move(spec).value();
  (void)j;
  return Status::Ok();
}

Status ParseTriggers(FieldReader& r, ScheduleSpec& s) {
  FieldReader t = r.Child("triggers");
  std::string cron;
  std::string zone = "UTC";
  t.Get("cron", cron);
  t.Get("time_zone", zone);
  if (t.Has("cron")) {
    auto c = CronSchedule::Parse(cron, zone);
    if (!c.ok()) {
      const bool zone = c.status().message().rfind("unknown time zone", 0) == 0;
      t.Fail(zone ? "time_zone" : "cron", "is invalid: " + c.status().message());
    } else {
      s.cron = std::move(c).value();
    }
  } else if (t.Has("time_zone")) {
    t.Fail("time_zone", "is only meaningful with triggers.cron");
  }
  if (t.Has("new_data")) {
    FieldReader n = t.Child("new_data");
    NewDataTrigger nd;
    n.Get("dir", nd.dir);
    n.Get("min_files", nd.thresholds.min_files);
    n.Get("min_samples", nd.thresholds.min_samples);
    if (nd.dir.empty()) n.Fail("dir", "is required: the directory new data files arrive in");
    if (nd.thresholds.min_files < 0) n.Fail("min_files", "must be >= 0");
    if (nd.thresholds.min_samples < 0) n.Fail("min_samples", "must be >= 0");
    if (nd.thresholds.min_files == 0 && nd.thresholds.min_samples == 0) {
      n.Fail("min_files", "and min_samples cannot both be 0");
    }
    GANTRY_RETURN_IF_ERROR(n.Finish());
    s.new_data = std::move(nd);
  }
  t.Get("drift", s.on_drift);
  json alerts;
  t.Get("alerts", alerts);
  if (!alerts.is_null()) {
    if (!alerts.is_array()) {
      t.Fail("alerts", "must be a list of alert rule names");
    } else {
      for (const json& a : alerts) {
        if (!a.is_string() || a.get<std::string>().empty()) {
          t.Fail("alerts", "must be a list of alert rule names");
          break;
        }
        s.on_alerts.push_back(a.get<std::string>());
      }
    }
  }
  return t.Finish();
}

Status ParseEvaluation(FieldReader& r, ScheduleSpec& s) {
  FieldReader e = r.Child("evaluation");
  GateConfig& g = s.gate;
  e.Get("metric", g.metric);
  e.Get("higher_is_better", g.higher_is_better);
  e.Get("margin", g.margin);
  if (e.Has("floor")) {
    double floor = 0;
    e.Get("floor", floor);
    g.floor = floor;
  }
  if (g.metric.empty()) e.Fail("metric", "must name a metric (accuracy, loss, ...)");
  if (g.margin < 0) e.Fail("margin", "must be >= 0");
  json guardrails;
  e.Get("guardrails", guardrails);
  if (!guardrails.is_null() && !guardrails.is_array()) e.Fail("guardrails", "must be a list");
  if (guardrails.is_array()) {
    for (size_t i = 0; i < guardrails.size(); ++i) {
      FieldReader gr(guardrails[i], e.FieldPath("guardrails") + "[" + std::to_string(i) + "]", kWhat);
      Guardrail rail;
      gr.Get("metric", rail.metric);
      gr.Get("max_drop", rail.max_drop);
      gr.Get("higher_is_better", rail.higher_is_better);
      if (rail.metric.empty()) gr.Fail("metric", "is required");
      if (rail.max_drop < 0) gr.Fail("max_drop", "must be >= 0");
      GANTRY_RETURN_IF_ERROR(gr.Finish());
      g.guardrails.push_back(rail);
    }
  }
  return e.Finish();
}

}  // namespace

Result<ScheduleSpec> ScheduleSpec::Parse(const json& j, const std::string& base_dir) {
  if (!j.is_object()) return Status::InvalidArgument("schedule: must be a YAML map");
  FieldReader r(j, "", kWhat);
  ScheduleSpec s;
  r.Get("name", s.name);
  r.Get("model", s.model);
  r.Get("champion", s.champion);
  r.Get("replay", s.replay);
  if (s.name.empty()) {
    r.Fail("name", "is required");
  } else if (Status st = ValidateName(s.name, "schedule name"); !st.ok()) {
    r.Fail("name", st.message());
  }
  if (Status st = ValidateName(s.champion, "alias"); !st.ok()) r.Fail("champion", st.message());
  if (s.replay < 0 || s.replay >= 1) r.Fail("replay", "must be in [0, 1): the share of older data in a run");
  GANTRY_RETURN_IF_ERROR(ParseJob(r, j, base_dir, s));
  // Children first: reading them marks `triggers` and `evaluation` as known.
  Status triggers = ParseTriggers(r, s);
  Status evaluation = ParseEvaluation(r, s);
  GANTRY_RETURN_IF_ERROR(r.Finish());
  GANTRY_RETURN_IF_ERROR(triggers);
  GANTRY_RETURN_IF_ERROR(evaluation);
  if (s.model.empty()) s.model = s.job.checkpoint.model.empty() ? s.job.name : s.job.checkpoint.model;
  if (Status st = ValidateName(s.model, "model name"); !st.ok()) {
    return Status::InvalidArgument("schedule: model: " + st.message());
  }
  return s;
}

json ScheduleSpec::ToJson() const {
  json triggers = json::object();
  if (cron) {
    triggers["cron"] = cron->expression();
    triggers["time_zone"] = cron->time_zone();
  }
  if (new_data) {
    triggers["new_data"] = {{"dir", new_data->dir},
                            {"min_files", new_data->thresholds.min_files},
                            {"min_samples", new_data->thresholds.min_samples}};
  }
  if (on_drift) triggers["drift"] = true;
  if (!on_alerts.empty()) triggers["alerts"] = on_alerts;
  json guardrails = json::array();
  for (const Guardrail& g : gate.guardrails) {
    guardrails.push_back({{"metric", g.metric}, {"max_drop", g.max_drop}, {"higher_is_better", g.higher_is_better}});
  }
  json evaluation = {{"metric", gate.metric},
                     {"higher_is_better", gate.higher_is_better},
                     {"margin", gate.margin},
                     {"guardrails", guardrails}};
  if (gate.floor) evaluation["floor"] = *gate.floor;
  return {{"name", name},   {"model", model},   {"champion", champion},     {"job", job.ToJson()},
          {"replay", replay}, {"triggers", triggers}, {"evaluation", evaluation}};
}

}  // namespace gantry::coordinator
