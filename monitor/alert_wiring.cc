#include "monitor/alert_wiring.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/config.h"
#include "common/fs.h"
#include "common/rpc.h"
#include "monitor/serving_view.h"

namespace gantry::monitor {

extern const char* const kDefaultAlertsYaml;  // default_alerts.cc (generated)

Canceller::Canceller(zmq::context_t& ctx, DataDir dir, std::string coordinator)
    : ctx_(ctx), dir_(std::move(dir)), coordinator_(std::move(coordinator)), thread_([this] { Run(); }) {}

Canceller::~Canceller() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Canceller::Cancel(const std::string& job_id, const std::string& why) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back({"cancel_job", {{"job_id", job_id}}, "cancelling job " + job_id + " by alert: " + why});
  }
  cv_.notify_all();
}

void Canceller::ReportFiring(json alert) {
  {
    std::lock_guard lock(mu_);
    std::string what = "reporting alert " + alert.value("rule", "") + " to the retraining schedules";
    queue_.push_back({"schedule_alert", std::move(alert), std::move(what)});
  }
  cv_.notify_all();
}

void Canceller::Run() {
  for (;;) {
    Call item;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    std::string endpoint = coordinator_;
    if (endpoint.empty()) {
      auto info = dir_.ReadServiceInfo(kCoordinator);
      if (info.ok() && info->endpoints.count("api")) endpoint = info->endpoints.at("api");
    }
    const bool cancel = item.type == "cancel_job";
    if (endpoint.empty()) {
      // No coordinator: a cancel is lost (an error); a schedule report has no one to go to.
      if (cancel) spdlog::error("{}: no coordinator is known (no --coordinator, no run file)", item.what);
      continue;
    }
    RpcClient client(ctx_, endpoint, std::chrono::milliseconds(2000));
    auto r = client.Call(item.type, item.body);
    if (r.ok()) {
      if (cancel) spdlog::warn("{}: done", item.what);
    } else if (cancel) {
      spdlog::error("{} failed: {}", item.what, r.status().ToString());
    } else {
      spdlog::warn("{} failed: {}", item.what, r.status().ToString());
    }
  }
}

Result<alerts::AlertsConfig> LoadAlertRules(const std::string& path, const DataDir& dir) {
  if (!path.empty()) return alerts::LoadAlertsFile(path);
  const std::string in_data = dir.Path("alerts.yaml");
  if (PathExists(in_data)) return alerts::LoadAlertsFile(in_data);
  GANTRY_ASSIGN_OR_RETURN(json root, YamlToJson(kDefaultAlertsYaml));
  auto config = alerts::ParseAlertsConfig(root);
  if (!config.ok()) return config.status().WithContext("built-in alert rules");
  return config;
}

AlertWiring::AlertWiring(const Clock& clock, alerts::AlertsConfig config, alerts::AlertStore store,
                         std::unique_ptr<alerts::Notifier> notifier, std::unique_ptr<Canceller> canceller,
                         Publish publish)
    : clock_(clock),
      engine_(clock, std::move(config.rules),
              alerts::AlertEngine::Options{config.keep_resolved_seconds, config.webhook}),
      store_(std::move(store)),
      notifier_(std::move(notifier)),
      canceller_(std::move(canceller)),
      publish_(std::move(publish)) {}

Status AlertWiring::Restore() {
  GANTRY_ASSIGN_OR_RETURN(auto instances, store_.Load());
  engine_.Restore(std::move(instances));
  return Status::Ok();
}

void AlertWiring::OnMessage(const IngestMessage& msg) {
  if (const auto* m = std::get_if<ServingMetricsMessage>(&msg.record)) {
    Handle(engine_.ObserveServing(ServingAlertSample(*m)));
    return;
  }
  if (const auto* p = std::get_if<MetricsPoint>(&msg.record)) {
    alerts::MetricSample s{p->job_id, p->attempt, p->rank, p->step, p->values};
    Handle(engine_.ObserveMetrics(s));
  } else if (const auto* e = std::get_if<JobEvent>(&msg.record)) {
    // The job spec's own rules ride on its job_state events (the coordinator
    // validated them at submit; a bad list here is logged and ignored).
    if (auto it = msg.body.find("alerts"); it != msg.body.end() && it->is_array()) {
      auto rules = alerts::ParseRules(*it, "alerts", alerts::RuleScope::kJob, "job " + e->job_id);
      if (rules.ok()) {
        engine_.SetJobRules(e->job_id, std::move(rules).value());
      } else {
        spdlog::warn("ignoring the alert rules of job {}: {}", e->job_id, rules.status().ToString());
      }
    }
    Handle(engine_.ObserveJobState(e->job_id, e->state));
  }
}

alerts::MetricSample ServingAlertSample(const ServingMetricsMessage& m) {
  alerts::MetricSample s;
  s.job_id = m.deployment + "/" + m.model;
  s.step = m.seq;
  auto& v = s.values;
  v.emplace_back("serving_requests_total", static_cast<double>(m.requests));
  v.emplace_back("serving_errors_total", static_cast<double>(m.requests - std::min(m.requests, m.succeeded)));
  if (m.requests > 0) {
    v.emplace_back("serving_error_ratio",
                   static_cast<double>(m.requests - std::min(m.requests, m.succeeded)) / static_cast<double>(m.requests));
  }
  if (m.latency_seconds.count > 0) {
    v.emplace_back("serving_latency_mean_seconds", m.latency_seconds.sum / static_cast<double>(m.latency_seconds.count));
    if (auto p = HistogramQuantile(m.latency_seconds, 0.99)) v.emplace_back("serving_latency_p99_seconds", *p);
  }
  v.emplace_back("serving_input_anomalies_total",
                 static_cast<double>(m.non_finite + m.wrong_shape + m.wrong_datatype + m.out_of_range_requests));
  v.emplace_back("serving_input_out_of_range_total", static_cast<double>(m.out_of_range_requests));
  if (m.accuracy) v.emplace_back("serving_accuracy", *m.accuracy);
  v.emplace_back("serving_feedback_window", static_cast<double>(m.window_outcomes));
  for (const ServingClassStats& c : m.per_class) {
    if (c.precision) v.emplace_back("serving_precision_" + std::to_string(c.label), *c.precision);
    if (c.recall) v.emplace_back("serving_recall_" + std::to_string(c.label), *c.recall);
  }
  return s;
}

void AlertWiring::QueueDrift(alerts::DriftSample sample) {
  std::lock_guard lock(drift_mu_);
  drift_queue_.push_back(std::move(sample));
}

void AlertWiring::OnTick() {
  std::vector<alerts::DriftSample> drift;
  {
    std::lock_guard lock(drift_mu_);
    drift.swap(drift_queue_);
  }
  for (const auto& d : drift) Handle(engine_.ObserveDrift(d));
  double now = clock_.WallSeconds();
  if (now - last_tick_ < 1.0) return;
  last_tick_ = now;
  Handle(engine_.Tick());
}

void AlertWiring::Handle(const std::vector<alerts::Transition>& transitions) {
  if (transitions.empty()) return;
  Status s = store_.Record(transitions);
  if (!s.ok() && !store_failing_) spdlog::error("recording alert transitions failed: {}", s.ToString());
  store_failing_ = !s.ok();
  for (const auto& t : transitions) {
    // Firing and resolved matter to a reader; pending flaps are debug noise.
    const bool loud = t.to == alerts::AlertState::kFiring || t.to == alerts::AlertState::kResolved;
    spdlog::log(loud ? spdlog::level::info : spdlog::level::debug, "alert {} {} -> {}: {}", t.alert.key.ToString(),
                alerts::StateName(t.from), alerts::StateName(t.to), t.alert.why);
    if (notifier_) notifier_->Notify(t);
    if (publish_) publish_(t);
    if (t.to == alerts::AlertState::kFiring && t.from != alerts::AlertState::kFiring && canceller_) {
      auto model = t.alert.labels.find("model");
      canceller_->ReportFiring({{"rule", t.alert.key.rule},
                                {"kind", alerts::KindName(t.alert.kind)},
                                {"source", t.alert.key.job},
                                {"model", model == t.alert.labels.end() ? "" : model->second},
                                {"why", t.alert.why}});
    }
    if (t.action == alerts::Action::kCancel && canceller_) {
      canceller_->Cancel(t.alert.key.job, "alert " + t.alert.key.rule + ": " + t.alert.why);
    }
  }
}

}  // namespace gantry::monitor
