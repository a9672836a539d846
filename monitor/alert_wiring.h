// AlertWiring: the monitor's alert engine fed from ingest (engine.h's wiring
// steps 1-3).
//
//   at start   Restore(): the AlertStore's instances go back into the engine,
//              so a firing alert keeps its since-time across a restart;
//   ingest     every serving report -> ObserveServing (ServingAlertSample);
//              every metrics point -> ObserveMetrics, every job_state event ->
//              ObserveJobState (OnMessage, on the RpcServer thread); a
//              job_state body's `alerts` list (the job spec's rules, sent by
//              the coordinator with every event) -> SetJobRules first;
//   tick       engine.Tick() about once a second (OnTick);
//   transition -> AlertStore::Record (the monitor's DB), the notifier
//              (webhook), the `publish` callback (the ZeroMQ feed as topic
//              "alert/<job>" and the SSE stream), and, for a change into
//              firing of a rule with `action: cancel`, the Canceller.
//
// Canceller: one background thread that sends `cancel_job {job_id}` to the
// coordinator with a 2 s timeout, off the ingest path. It also carries every
// change into firing to the coordinator as `schedule_alert {rule, kind,
// source, model, why}` (the alert's `model` label, if any), where a
// retraining schedule with `drift: true` or the rule in its `alerts` list
// starts a run; a coordinator that is not there only costs a log line. The coordinator's api
// endpoint is the --coordinator flag, else read from the coordinator's run
// file in the data directory at the time of the cancel (so `gantry up`, which
// starts the coordinator after the monitor, needs no extra flag).
//
// Ownership: owns the engine, store, notifier and canceller. Thread safety:
// OnMessage/OnTick on the RpcServer thread; engine() (List) from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/data_dir.h"
#include "monitor/alerts/alert_store.h"
#include "monitor/alerts/engine.h"
#include "monitor/alerts/notifier.h"
#include "monitor/monitor_service.h"

namespace gantry::monitor {

class Canceller {
 public:
  // `coordinator` empty: look the endpoint up in `dir`'s coordinator run file.
  Canceller(zmq::context_t& ctx, DataDir dir, std::string coordinator);
  ~Canceller();
  Canceller(const Canceller&) = delete;
  Canceller& operator=(const Canceller&) = delete;
  // Queues a cancel of `job_id`; never blocks.
  void Cancel(const std::string& job_id, const std::string& why);
  // Queues `schedule_alert` (an alert that started firing, for the
  // coordinator's retraining schedules, docs/retraining.md); never blocks.
  void ReportFiring(json alert);

 private:
  void Run();
  zmq::context_t& ctx_;
  const DataDir dir_;
  const std::string coordinator_;
  std::mutex mu_;
  std::condition_variable cv_;
  struct Call {
    std::string type;  // cancel_job | schedule_alert
    json body;
    std::string what;  // for the log
  };
  std::deque<Call> queue_;  // GUARDED_BY(mu_)
  bool stop_ = false;                                      // GUARDED_BY(mu_)
  std::thread thread_;
};

// The rules in effect: `path` when given (errors name it), else
// <data>/alerts.yaml when present, else the built-in copy of configs/alerts.yaml.
Result<alerts::AlertsConfig> LoadAlertRules(const std::string& path, const DataDir& dir);

// The values a serving report offers the alert rules (docs/monitor.md,
// "Alert rules"): serving_accuracy, serving_error_ratio,
// serving_latency_p99_seconds, serving_precision_<class>, ...
alerts::MetricSample ServingAlertSample(const ServingMetricsMessage& m);

class AlertWiring final : public IngestObserver {
 public:
  using Publish = std::function<void(const alerts::Transition&)>;
  AlertWiring(const Clock& clock, alerts::AlertsConfig config, alerts::AlertStore store,
              std::unique_ptr<alerts::Notifier> notifier, std::unique_ptr<Canceller> canceller, Publish publish);

  // Step 1; call before serving.
  Status Restore();
  void OnMessage(const IngestMessage& msg) override;
  void OnTick() override;
  // Queues a drift result for the engine (from any thread, e.g. the drift
  // watcher's); the next OnTick feeds it to ObserveDrift.
  void QueueDrift(alerts::DriftSample sample);

  const alerts::AlertEngine& engine() const { return engine_; }

 private:
  void Handle(const std::vector<alerts::Transition>& transitions);

  const Clock& clock_;
  alerts::AlertEngine engine_;
  alerts::AlertStore store_;
  std::unique_ptr<alerts::Notifier> notifier_;
  std::unique_ptr<Canceller> canceller_;
  Publish publish_;
  double last_tick_ = 0;
  std::mutex drift_mu_;
  std::vector<alerts::DriftSample> drift_queue_;  // GUARDED_BY(drift_mu_)
  bool store_failing_ = false;
};

}  // namespace gantry::monitor
