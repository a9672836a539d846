#include "monitor/http_api.h"

#include <chrono>
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
  json out = {{"id", r.id},
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
  if (!r.deployment.empty()) {
    out["kind"] = "serving";
    out["deployment"] = r.deployment;
    out["model"] = r.model;
    out["version"] = r.version;
  } else {
    out["kind"] = "dataset";
  }
  return out;
}

double WallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

json Optional(const std::optional<double>& v) { return v ? Number(*v) : json(nullptr); }

// One /api/deployments item (docs/protocol.md).
json DeploymentJson(const ServingEntry& e, const DriftRecord* drift) {
  const ServingMetricsMessage& m = e.latest;
  json codes = json::object();
  for (const auto& [code, n] : m.errors_by_code) codes[std::to_string(code)] = n;
  json classes = json::array();
  for (const ServingClassStats& c : m.per_class) {
    classes.push_back({{"class", c.label}, {"precision", Optional(c.precision)}, {"recall", Optional(c.recall)},
                       {"support", c.support}});
  }
  const double mean_batch =
      m.batch_size.count > 0 ? m.batch_size.sum / static_cast<double>(m.batch_size.count) : 0;
  json out = {{"deployment", m.deployment},
              {"model", m.model},
              {"version", m.version},
              {"time", m.time},
              {"received", e.received},
              {"requests", m.requests},
              {"succeeded", m.succeeded},
              {"errors", m.requests - std::min(m.requests, m.succeeded)},
              {"errors_by_code", std::move(codes)},
              {"errors_by_kind", m.errors_by_kind},
              {"request_rate", Optional(e.request_rate)},
              {"error_rate", Optional(e.error_rate)},
              {"error_ratio", Optional(e.error_ratio)},
              {"latency_p50_seconds", Optional(HistogramQuantile(m.latency_seconds, 0.5))},
              {"latency_p99_seconds", Optional(HistogramQuantile(m.latency_seconds, 0.99))},
              {"latency_mean_seconds", m.latency_seconds.count > 0
                                           ? Number(m.latency_seconds.sum / static_cast<double>(m.latency_seconds.count))
                                           : json(nullptr)},
              {"batch_size_mean", Number(mean_batch)},
              {"input_anomalies", {{"non_finite", m.non_finite},
                                   {"wrong_shape", m.wrong_shape},
                                   {"wrong_datatype", m.wrong_datatype},
                                   {"out_of_range", m.out_of_range_requests},
                                   {"out_of_range_values", m.out_of_range_values}}},
              {"accuracy", Optional(m.accuracy)},
              {"feedback_window", m.window_outcomes},
              {"feedback_labels", m.labels_matched},
              {"per_class", std::move(classes)},
              {"samples_sent", m.samples_sent},
              {"samples_dropped", m.samples_dropped},
              {"reports_dropped", m.reports_dropped},
              {"drift", nullptr}};
  if (drift != nullptr) out["drift"] = DriftJson(*drift);
  return out;
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
  GANTRY_RETURN_IF_ERROR(
      router.Add("GET", "/api/deployments", [this](const http::HttpRequest&) { return Deployments(); }));
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
  if (const auto* s = std::get_if<ServingMetricsMessage>(&msg.record)) {
    serving_.OnReport(*s, WallNow());
    // The page refreshes its deployments panel on this event (no polling).
    if (!events_->HasClients()) return;  // no page open: nothing to format
    events_->Publish("serving", Dump(json{{"deployment", s->deployment}, {"model", s->model},
                                         {"version", s->version}, {"time", s->time}}));
    return;
  }
  if (const auto* p = std::get_if<MetricsPoint>(&msg.record)) {
    model_.OnPoint(*p);
    // Every point would be formatted for the pages' stream: not while no
    // page is open (a quarter of the ingest thread's time otherwise).
    if (!events_->HasClients()) return;
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

http::HttpResponse HttpApi::Deployments() {
  // The latest serving drift window of each (deployment, model).
  std::map<std::pair<std::string, std::string>, DriftRecord> drift;
  if (drift_) {
    for (const DriftRecord& r : drift_()) {
      if (!r.deployment.empty()) drift.emplace(std::make_pair(r.deployment, r.model), r);
    }
  }
  json out = json::array();
  for (const ServingEntry& e : serving_.List(WallNow())) {
    auto it = drift.find({e.latest.deployment, e.latest.model});
    out.push_back(DeploymentJson(e, it == drift.end() ? nullptr : &it->second));
  }
  return http::HttpResponse::Json(200, Dump(json{{"deployments", std::move(out)}}));
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

Result<prometheus::MetricsSnapshot> HttpApi::Snapshot() {
  prometheus::MetricsSnapshot snap = model_.Snapshot();
  serving_.Fill(snap, WallNow());
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
          // The most drifted features (as before), and any chi-square (a window's predicted classes).
          if (d.features.size() >= 5 && !f.contains("chi2_statistic")) continue;
          if (f.contains("ks_statistic") && f["ks_statistic"].is_number()) {
            std::optional<double> p;
            if (f["ks_p_value"].is_number()) p = f["ks_p_value"].get<double>();
            d.features.push_back({f.value("name", ""), "ks", f["ks_statistic"].get<double>(), p});
          }
          if (f.contains("psi") && f["psi"].is_number()) {
            d.features.push_back({f.value("name", ""), "psi", f["psi"].get<double>(), std::nullopt});
          }
          if (f.contains("chi2_statistic") && f["chi2_statistic"].is_number()) {
            std::optional<double> p;
            if (f.contains("chi2_p_value") && f["chi2_p_value"].is_number()) p = f["chi2_p_value"].get<double>();
            d.features.push_back({f.value("name", ""), "chi2", f["chi2_statistic"].get<double>(), p});
          }
        }
      }
      snap.drift.push_back(std::move(d));
    }
  }
  return snap;
}

}  // namespace gantry::monitor
