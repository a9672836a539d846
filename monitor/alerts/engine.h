// AlertEngine: evaluates alert rules on typed observations and returns the
// state changes. It reads no sockets and writes nothing: the monitor feeds it
// and hands the transitions on.
//
// Wiring (the monitor's ingest loop):
//  1. at start: engine.Restore(store.Load()) so firing alerts keep their
//     since-time across a restart;
//  2. each metrics point -> ObserveMetrics(), each job_state event ->
//     ObserveJobState(), each drift result -> ObserveDrift(); about once a
//     second -> Tick() (no-progress rules and pending alerts whose `for`
//     elapsed without new data);
//  3. every returned Transition -> store.Record(), notifier.Notify(), the
//     feed; one with action == kCancel -> ask the coordinator to cancel the
//     job (reported once per firing).
//
// Time: every duration and since-time is the injected Clock's WallSeconds(),
// so persisted times still mean something after a restart and tests advance
// a ManualClock.
//
// Thread safety: all methods may be called from any thread; one internal
// mutex serialises them (List() for the HTTP server while ingest observes).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "monitor/alerts/alert.h"
#include "monitor/alerts/conditions.h"
#include "monitor/alerts/rule.h"

namespace gantry::monitor::alerts {

// One metrics point (the fields the rules read of monitor::MetricsPoint).
struct MetricSample {
  std::string job_id;
  int64_t attempt = 0;
  int64_t rank = 0;
  int64_t step = 0;
  std::vector<std::pair<std::string, double>> values;  // may hold NaN/Inf
};

// One dataset-level drift result (drift_sample.h converts drift::DatasetDrift).
struct DriftSample {
  std::string source;  // a job id, dataset directory or deployment name
  double share = 0;    // drifted / tested
  int64_t drifted = 0;
  int64_t tested = 0;
  bool dataset_drift = false;   // the detector's verdict
  double share_threshold = 0;   // the threshold behind that verdict
};

class AlertEngine {
 public:
  struct Options {
    // Resolved alerts stay listed this long, then leave memory (1 h:
    // long enough to see what happened overnight-ish, short enough that
    // the list stays about the present; Prometheus keeps them 15 min).
    double keep_resolved_seconds = 3600;
    // Used by rules without their own webhook.
    std::string default_webhook;
  };

  // `clock` must outlive the engine.
  AlertEngine(const Clock& clock, std::vector<Rule> cluster_rules, Options options);
  AlertEngine(const Clock& clock, std::vector<Rule> cluster_rules)
      : AlertEngine(clock, std::move(cluster_rules), Options{}) {}

  // Rules from one job's spec (replacing earlier ones); dropped when the job ends.
  void SetJobRules(const std::string& job_id, std::vector<Rule> rules);
  // Instances read back from the store; inactive ones are skipped.
  void Restore(std::vector<AlertInstance> instances);

  // A sample of an attempt older than the newest seen for its job is
  // ignored (a late re-delivery); a newer attempt resets the per-rank values.
  std::vector<Transition> ObserveMetrics(const MetricSample& sample);
  // RUNNING restarts the no-progress clock; QUEUED, SCHEDULED, RESTARTING
  // and PREEMPTED pause it; SUCCEEDED, FAILED and CANCELLED end the job:
  // its pending alerts go inactive, its firing ones resolve.
  std::vector<Transition> ObserveJobState(const std::string& job_id, const std::string& state);
  std::vector<Transition> ObserveDrift(const DriftSample& sample);
  // One serving report of a deployed model (job_id = "<deployment>/<model>",
  // step = the report's seq, values named serving_*, see docs/monitor.md):
  // threshold and nonfinite rules only; no job is tracked for it.
  std::vector<Transition> ObserveServing(const MetricSample& sample);
  std::vector<Transition> Tick();

  // Pending, firing and resolved alerts: firing first, then pending, then
  // resolved; newest state change first within each.
  std::vector<AlertInstance> List() const;

 private:
  struct JobTrack {
    bool running = true;
    int64_t attempt = -1;
    int64_t last_step = -1;
    double last_progress = 0;
    std::map<std::string, std::deque<double>> history;            // throughput samples per metric
    std::map<std::string, std::map<int64_t, double>> rank_latest;  // straggler: metric -> rank -> value
  };

  // REQUIRES: mu_ held (for all below).
  std::vector<const Rule*> RulesFor(const std::string& job) const;
  const Rule* FindRule(const AlertKey& key) const;
  void Apply(const Rule& rule, const AlertKey& key, const Evaluation& e, std::vector<Transition>& out);
  // An instance of `key` exists (pending, firing or resolved): a miss must
  // explain itself (conditions.h). REQUIRES: mu_ held.
  bool Active(const AlertKey& key) const { return instances_.count(key) != 0; }
  void Change(AlertInstance& inst, AlertState to, std::vector<Transition>& out);
  void EndInstance(AlertInstance& inst, const std::string& why, std::vector<Transition>& out);
  void EvalNoProgressFor(const std::string& job, const JobTrack& t, std::vector<Transition>& out);
  void EvalStragglers(const std::string& job, const Rule& rule, const std::map<int64_t, double>& latest,
                      std::vector<Transition>& out);

  const Clock& clock_;
  const Options options_;
  mutable std::mutex mu_;
  std::vector<Rule> cluster_rules_;                        // GUARDED_BY(mu_)
  std::map<std::string, std::vector<Rule>> job_rules_;     // GUARDED_BY(mu_)
  std::map<std::string, JobTrack> jobs_;                   // GUARDED_BY(mu_)
  std::map<AlertKey, AlertInstance> instances_;            // GUARDED_BY(mu_)
};

}  // namespace gantry::monitor::alerts
