#include "monitor/http_api.h"

#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "monitor/alerts/alert_json.h"
#include "monitor/downsample.h"
#include "monitor/http/metrics_route.h"
#include "common/http/static_files.h"
#include "monitor/monitor_api.h"
#if GANTRY_HAVE_DASHBOARD
#include "monitor/web/dashboard_files.h"
#endif

namespace gantry::monitor {
namespace {

// JSON has no NaN/Inf: NaN becomes null, +-Inf the strings "+Inf"/"-Inf".
json Number(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return v;
}

// Metric names and reasons arrive from the network: never throw on bad UTF-8.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

http::HttpResponse JsonError(int status, const std::string& message) {
  return http::HttpResponse::Json(status, Dump(json{{"error", message}}));
}

json AlertJson(const alerts::AlertInstance& a) { return AlertApiJson(a); }

Result<int64_t> IntParam(const http::HttpRequest& r, const std::string& name, int64_t def) {
  auto v = r.Query(name);
  if (!v) return def;
  try {
    size_t used = 0;
    int64_t x = std::stoll(*v, &used);
    if (used != v->size()) throw std::invalid_argument(name);
    return x;
  } catch (const std::exception&) {
    return Status::InvalidArgument("query parameter '" + name + "' must be an integer (got '" + *v + "')");
  }
}

// One /api/drift item (docs/protocol.md): the page reads dataset, time,
// share, drifted and features[].feature/.statistic.
json DriftJson(const DriftRecord& r) {
  json features = json::parse(r.features_json, nullptr, false);
  if (features.is_discarded()) features = json::array();
  for (json& f : features) {
    f["feature"] = f.value("name", "");
    if (f.contains("ks_statistic")) {
      f["statistic"] = f["ks_statistic"];
    } else if (f.contains("chi2_statistic")) {
      f["statistic"] = f["chi2_statistic"];
    }
  }
  return {{"id", r.id},
          {"dataset", r.dataset},
          {"file", r.file},
          {"time", r.time},
          {"share", Number(r.share)},
          {"drifted", r.dataset_drift},
          {"drifted_features", r.drifted},
          {"tested", r.tested},
          {"share_threshold", Number(r.share_threshold)},
          {"rows", r.rows},
          {"features", std::move(features)}};
}

json SeriesJson(const std::vector<SeriesPoint>& points) {
  json out = json::array();
  for (const auto& p : points) out.push_back(json::array({p.step, p.time, Number(p.value)}));
  return out;
}

}  // namespace

HttpApi::HttpApi(MetricsStore query_store, const alerts::AlertEngine* alerts)
    : query_store_(std::move(query_store)), alerts_(alerts), events_(std::make_shared<http::SseBroadcaster>()) {}

Status HttpApi::Install(http::Router& router) {
  GANTRY_RETURN_IF_ERROR(router.Add("GET", "/metrics", http::MetricsRoute([this] { return Snapshot(); })));
  GANTRY_RETURN_IF_ERROR(router.Add("GET", "/api/jobs", [this](const http::HttpRequest&) { return Jobs(); }));
  GANTRY_RETURN_IF_ERROR(router.Add("GET", "/api/jobs/{id}/metrics",
                                    [this](const http::HttpRequest& r) { return JobMetrics(r); }));
  GANTRY_RETURN_IF_ERROR(router.Add("GET", "/api/alerts", [this](const http::HttpRequest&) { return Alerts(); }));
  GANTRY_RETURN_IF_ERROR(router.Add("GET", "/api/drift", [this](const http::HttpRequest&) { return Drift(); }));
  GANTRY_RETURN_IF_ERROR(router.Add("GET", "/events", [this](const http::HttpRequest&) {
    return http::HttpResponse::EventStream(events_);
  }));
#if GANTRY_HAVE_DASHBOARD
  http::StaticFiles files;
  GANTRY_RETURN_IF_ERROR(AddDashboardFiles(files));
  GANTRY_RETURN_IF_ERROR(files.Install(router));
#endif
  return Status::Ok();
}

Status HttpApi::Restore() {
  std::lock_guard lock(store_mu_);
  GANTRY_ASSIGN_OR_RETURN(std::vector<std::string> ids, query_store_.JobIds());
  for (const std::string& id : ids) {
    GANTRY_ASSIGN_OR_RETURN(std::vector<JobEvent> events, query_store_.Events(id));
    GANTRY_ASSIGN_OR_RETURN(std::vector<MetricsPoint> latest, query_store_.LatestPoints(id));
    model_.Restore(events, latest);
  }
  return Status::Ok();
}

void HttpApi::OnMessage(const IngestMessage& msg) {
  if (const auto* p = std::get_if<MetricsPoint>(&msg.record)) {
    model_.OnPoint(*p);
    json values = json::object();
    for (const auto& [name, v] : p->values) values[name] = Number(v);
    events_->Publish("point", Dump(json{{"job_id", p->job_id},
                                   {"rank", p->rank},
                                   {"attempt", p->attempt},
                                   {"step", p->step},
                                   {"time", p->time},
                                   {"values", std::move(values)}}));
  } else if (const auto* e = std::get_if<JobEvent>(&msg.record)) {
    std::string name;
    if (auto it = msg.body.find("name"); it != msg.body.end() && it->is_string()) name = it->get<std::string>();
    model_.OnEvent(*e, name);
    events_->Publish("job_state", Dump(json{{"job_id", e->job_id},
                                       {"state", e->state},
                                       {"attempt", e->attempt ? json(*e->attempt) : json(nullptr)},
                                       {"reason", e->reason ? json(*e->reason) : json("")},
                                       {"time", e->time}}));
  }
}

void HttpApi::PublishAlert(const alerts::Transition& t) { events_->Publish("alert", Dump(AlertJson(t.alert))); }

void HttpApi::PublishDrift(const DriftRecord& r) { events_->Publish("drift", Dump(DriftJson(r))); }

http::HttpResponse HttpApi::Drift() const {
  json out = json::array();
  if (drift_) {
    for (const DriftRecord& r : drift_()) out.push_back(DriftJson(r));
  }
  return http::HttpResponse::Json(200, Dump(json{{"results", std::move(out)}}));
}

http::HttpResponse HttpApi::Jobs() const {
  json jobs = json::array();
  for (const auto& j : model_.Jobs()) {
    jobs.push_back({{"job_id", j.job_id},
                    {"name", j.name},
                    {"state", j.state},
                    {"attempt", j.attempt},
                    {"step", j.step},
                    {"total_steps", j.total_steps},
                    {"updated", j.updated}});
  }
  return http::HttpResponse::Json(200, Dump(json{{"jobs", std::move(jobs)}}));
}

http::HttpResponse HttpApi::JobMetrics(const http::HttpRequest& r) {
  const std::string id = r.params.at("id");
  auto after = IntParam(r, "after", -1);
  if (!after.ok()) return JsonError(400, after.status().message());
  auto max_points = IntParam(r, "max_points", kDefaultMaxPoints);
  if (!max_points.ok()) return JsonError(400, max_points.status().message());
  if (*max_points < 1) return JsonError(400, "query parameter 'max_points' must be >= 1");
  std::vector<MetricsPoint> points;
  {
    std::lock_guard lock(store_mu_);
    auto known = query_store_.HasJob(id);
    if (!known.ok()) return JsonError(500, known.status().ToString());
    if (!*known && !model_.Known(id)) return JsonError(404, "the monitor has no metrics or events of job '" + id + "'");
    auto p = query_store_.Points(id, *after, kMaxQueryPoints);
    if (!p.ok()) return JsonError(500, p.status().ToString());
    points = std::move(p).value();
  }
  // Only the newest attempt's points: a restarted job replays steps.
  int64_t attempt = 0;
  for (const auto& p : points) attempt = std::max(attempt, p.attempt);
  std::map<std::string, std::vector<SeriesPoint>> series;
  std::map<int64_t, std::vector<SeriesPoint>> ranks;
  for (const auto& p : points) {
    if (p.attempt != attempt) continue;
    for (const auto& [name, v] : p.values) {
      if (name == "step_time") ranks[p.rank].push_back({p.step, p.time, v});
      if (p.rank == 0) series[name].push_back({p.step, p.time, v});
    }
  }
  json s = json::object();
  for (const auto& [name, pts] : series) s[name] = SeriesJson(Downsample(pts, *max_points));
  json rs = json::object();
  for (const auto& [rank, pts] : ranks) rs[std::to_string(rank)] = SeriesJson(Downsample(pts, *max_points));
  return http::HttpResponse::Json(
      200, Dump(json{{"job_id", id}, {"series", std::move(s)}, {"rank_step_seconds", std::move(rs)}}));
}

http::HttpResponse HttpApi::Alerts() const {
  json out = json::array();
  if (alerts_) {
    for (const auto& a : alerts_->List()) out.push_back(AlertJson(a));
  }
  return http::HttpResponse::Json(200, Dump(json{{"alerts", std::move(out)}}));
}

Result<prometheus::MetricsSnapshot> HttpApi::Snapshot() const {
  prometheus::MetricsSnapshot snap = model_.Snapshot();
  if (alerts_) {
    std::map<std::pair<std::string, std::string>, int64_t> counts;
    for (const auto& a : alerts_->List()) ++counts[{a.key.rule, alerts::StateName(a.state)}];
    for (const auto& [k, n] : counts) snap.alerts.push_back({k.first, k.second, n});
  }
  if (drift_) {
    // The latest check of each dataset (a watched directory).
    std::set<std::string> seen;
    for (const DriftRecord& r : drift_()) {
      if (!seen.insert(r.dataset).second) continue;
      prometheus::DatasetDrift d{r.dataset, r.share, r.dataset_drift, r.time, {}};
      json features = json::parse(r.features_json, nullptr, false);
      if (features.is_array()) {
        for (const json& f : features) {
          if (d.features.size() >= 5) break;
          if (f.contains("ks_statistic") && f["ks_statistic"].is_number()) {
            std::optional<double> p;
            if (f["ks_p_value"].is_number()) p = f["ks_p_value"].get<double>();
            d.features.push_back({f.value("name", ""), "ks", f["ks_statistic"].get<double>(), p});
          }
          if (f.contains("psi") && f["psi"].is_number()) {
            d.features.push_back({f.value("name", ""), "psi", f["psi"].get<double>(), std::nullopt});
          }
        }
      }
      snap.drift.push_back(std::move(d));
    }
  }
  return snap;
}

}  // namespace gantry::monitor
