#include "monitor/prometheus/snapshot.h"

namespace gantry::prometheus {
namespace {

using T = MetricType;

Status RenderJobs(const MetricsSnapshot& s, TextWriter& w) {
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_jobs", T::kGauge, "Jobs by state."));
  for (const auto& [state, n] : s.jobs_by_state) {
    GANTRY_RETURN_IF_ERROR(w.Add({{"state", state}}, static_cast<double>(n)));
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_queue_depth", T::kGauge,
                                       "Jobs waiting to be scheduled."));
  GANTRY_RETURN_IF_ERROR(w.Add({}, static_cast<double>(s.queue_depth)));

  struct Field {
    const char* name;
    const char* help;
    std::optional<double> (*get)(const RunningJobMetrics&);
  };
  const Field fields[] = {
      {"gantry_job_loss", "Latest training loss of a running job (rank 0).",
       [](const RunningJobMetrics& j) { return j.loss; }},
      {"gantry_job_accuracy", "Latest accuracy of a running job, as a ratio in [0, 1].",
       [](const RunningJobMetrics& j) { return j.accuracy; }},
      {"gantry_job_step", "Latest training step of a running job.",
       [](const RunningJobMetrics& j) { return std::optional<double>(static_cast<double>(j.step)); }},
      {"gantry_job_samples_per_second", "Latest training throughput of a running job.",
       [](const RunningJobMetrics& j) { return j.samples_per_second; }},
  };
  for (const Field& f : fields) {
    GANTRY_RETURN_IF_ERROR(w.BeginFamily(f.name, T::kGauge, f.help));
    for (const RunningJobMetrics& j : s.running_jobs) {
      if (auto v = f.get(j)) {
        GANTRY_RETURN_IF_ERROR(w.Add({{"job", j.job_id}, {"attempt", std::to_string(j.attempt)}}, *v));
      }
    }
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_rank_step_seconds", T::kGauge,
                                       "Latest step time of each rank of a running job (stragglers stand out)."));
  for (const RunningJobMetrics& j : s.running_jobs) {
    for (const RankStepTime& r : j.ranks) {
      GANTRY_RETURN_IF_ERROR(w.Add({{"job", j.job_id}, {"rank", std::to_string(r.rank)}}, r.step_seconds));
    }
  }
  return Status::Ok();
}

Status RenderCounters(const MetricsSnapshot& s, TextWriter& w) {
  struct Counter {
    const char* name;
    const char* help;
    uint64_t value;
  };
  const Counter counters[] = {
      {"gantry_checkpoints_saved_total", "Checkpoint versions saved.", s.checkpoints_saved},
      {"gantry_checkpoints_failed_total", "Checkpoint saves that failed.", s.checkpoints_failed},
      {"gantry_ingest_points_total", "Metric points ingested (after deduplication).", s.ingest.points},
      {"gantry_ingest_events_total", "Events ingested.", s.ingest.events},
      {"gantry_ingest_duplicates_total", "Metric points dropped as duplicates of stored ones.",
       s.ingest.duplicates},
      {"gantry_ingest_dropped_total", "Ingest messages dropped (malformed or oversized).", s.ingest.dropped},
  };
  for (const Counter& c : counters) {
    GANTRY_RETURN_IF_ERROR(w.BeginFamily(c.name, T::kCounter, c.help));
    GANTRY_RETURN_IF_ERROR(w.Add({}, static_cast<double>(c.value)));
  }
  if (s.ingest.batch_seconds) {
    GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_ingest_batch_seconds", T::kHistogram,
                                         "Time to commit one ingest batch to SQLite."));
    GANTRY_RETURN_IF_ERROR(w.AddHistogram({}, *s.ingest.batch_seconds));
  }
  return Status::Ok();
}

Status RenderAlertsAndDrift(const MetricsSnapshot& s, TextWriter& w) {
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_alerts", T::kGauge, "Alerts by rule and state."));
  for (const AlertStateCount& a : s.alerts) {
    GANTRY_RETURN_IF_ERROR(w.Add({{"rule", a.rule}, {"state", a.state}}, static_cast<double>(a.count)));
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_drift_share", T::kGauge,
                                       "Share of features judged drifted in the latest check, [0, 1]."));
  for (const DatasetDrift& d : s.drift) {
    GANTRY_RETURN_IF_ERROR(w.Add({{"dataset", d.dataset}}, d.share_drifted));
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_drift_detected", T::kGauge,
                                       "1 when the latest check judged the dataset drifted, else 0."));
  for (const DatasetDrift& d : s.drift) {
    GANTRY_RETURN_IF_ERROR(w.Add({{"dataset", d.dataset}}, d.drifted ? 1 : 0));
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_drift_last_check_timestamp_seconds", T::kGauge,
                                       "Unix time of the latest drift check of the dataset."));
  for (const DatasetDrift& d : s.drift) {
    GANTRY_RETURN_IF_ERROR(w.Add({{"dataset", d.dataset}}, d.checked_at));
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_drift_feature_statistic", T::kGauge,
                                       "Drift statistic of one feature in the latest check."));
  for (const DatasetDrift& d : s.drift) {
    for (const FeatureDriftScore& f : d.features) {
      GANTRY_RETURN_IF_ERROR(
          w.Add({{"dataset", d.dataset}, {"feature", f.feature}, {"statistic", f.statistic}}, f.value));
    }
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_drift_feature_p_value", T::kGauge,
                                       "p-value of one feature's drift test in the latest check."));
  for (const DatasetDrift& d : s.drift) {
    for (const FeatureDriftScore& f : d.features) {
      if (!f.p_value) continue;
      GANTRY_RETURN_IF_ERROR(
          w.Add({{"dataset", d.dataset}, {"feature", f.feature}, {"statistic", f.statistic}}, *f.p_value));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> RenderPrometheus(const MetricsSnapshot& snap) {
  TextWriter w;
  GANTRY_RETURN_IF_ERROR(RenderJobs(snap, w));
  GANTRY_RETURN_IF_ERROR(RenderCounters(snap, w));
  GANTRY_RETURN_IF_ERROR(RenderAlertsAndDrift(snap, w));
  return w.Release();
}

}  // namespace gantry::prometheus
