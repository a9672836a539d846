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

Labels ModelLabels(const ServingModelMetrics& m) {
  return {{"deployment", m.deployment}, {"model", m.model}, {"version", m.version}};
}

Labels With(Labels l, const char* name, std::string value) {
  l.push_back({name, std::move(value)});
  return l;
}

Status RenderServing(const MetricsSnapshot& s, TextWriter& w) {
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_serving_requests_total", T::kCounter,
                                       "Requests a deployed model answered, by HTTP status code."));
  for (const ServingModelMetrics& m : s.serving) {
    for (const auto& [code, n] : m.requests_by_code) {
      GANTRY_RETURN_IF_ERROR(w.Add(With(ModelLabels(m), "code", code), static_cast<double>(n)));
    }
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_serving_request_duration_seconds", T::kHistogram,
                                       "Time from a request's arrival to its answer (errors included)."));
  for (const ServingModelMetrics& m : s.serving) {
    GANTRY_RETURN_IF_ERROR(w.AddHistogram(ModelLabels(m), m.latency_seconds));
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_serving_batch_size", T::kHistogram,
                                       "Rows per batch the model ran (dynamic batching)."));
  for (const ServingModelMetrics& m : s.serving) {
    GANTRY_RETURN_IF_ERROR(w.AddHistogram(ModelLabels(m), m.batch_size));
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_serving_input_anomalies_total", T::kCounter,
                                       "Requests with bad input, by kind (non_finite, wrong_shape, wrong_datatype: "
                                       "refused; out_of_range: served, a value outside the training profile's range)."));
  for (const ServingModelMetrics& m : s.serving) {
    for (const auto& [kind, n] : m.input_anomalies) {
      GANTRY_RETURN_IF_ERROR(w.Add(With(ModelLabels(m), "kind", kind), static_cast<double>(n)));
    }
  }
  struct Counter {
    const char* name;
    const char* help;
    uint64_t ServingModelMetrics::*field;
  };
  const Counter counters[] = {
      {"gantry_serving_input_out_of_range_values_total",
       "Input values outside the training profile's per-feature range.", &ServingModelMetrics::out_of_range_values},
      {"gantry_serving_feedback_labels_total", "Feedback labels matched to a prediction.",
       &ServingModelMetrics::feedback_labels},
      {"gantry_serving_samples_sent_total", "Sampled request rows sent to the monitor for drift windows.",
       &ServingModelMetrics::samples_sent},
      {"gantry_serving_samples_dropped_total",
       "Sampled request rows dropped by gantry-serve (queue full or monitor away).",
       &ServingModelMetrics::samples_dropped},
      {"gantry_serving_reports_dropped_total",
       "Metric reports gantry-serve dropped (queue full or monitor away).", &ServingModelMetrics::reports_dropped},
  };
  for (const Counter& c : counters) {
    GANTRY_RETURN_IF_ERROR(w.BeginFamily(c.name, T::kCounter, c.help));
    for (const ServingModelMetrics& m : s.serving) {
      GANTRY_RETURN_IF_ERROR(w.Add(ModelLabels(m), static_cast<double>(m.*c.field)));
    }
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_serving_accuracy", T::kGauge,
                                       "Live accuracy over the feedback window, [0, 1]."));
  for (const ServingModelMetrics& m : s.serving) {
    if (m.accuracy) GANTRY_RETURN_IF_ERROR(w.Add(ModelLabels(m), *m.accuracy));
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_serving_feedback_window_outcomes", T::kGauge,
                                       "Labelled predictions in the live-accuracy window."));
  for (const ServingModelMetrics& m : s.serving) {
    GANTRY_RETURN_IF_ERROR(w.Add(ModelLabels(m), static_cast<double>(m.feedback_window)));
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_serving_precision", T::kGauge,
                                       "Live precision of one class over the feedback window, [0, 1]."));
  for (const ServingModelMetrics& m : s.serving) {
    for (const ServingClassScore& c : m.per_class) {
      if (c.precision) GANTRY_RETURN_IF_ERROR(w.Add(With(ModelLabels(m), "class", std::to_string(c.label)), *c.precision));
    }
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_serving_recall", T::kGauge,
                                       "Live recall of one class over the feedback window, [0, 1]."));
  for (const ServingModelMetrics& m : s.serving) {
    for (const ServingClassScore& c : m.per_class) {
      if (c.recall) GANTRY_RETURN_IF_ERROR(w.Add(With(ModelLabels(m), "class", std::to_string(c.label)), *c.recall));
    }
  }
  GANTRY_RETURN_IF_ERROR(w.BeginFamily("gantry_serving_last_report_timestamp_seconds", T::kGauge,
                                       "Unix time of the deployment's latest report to the monitor."));
  for (const ServingModelMetrics& m : s.serving) {
    GANTRY_RETURN_IF_ERROR(w.Add(ModelLabels(m), m.last_report));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> RenderPrometheus(const MetricsSnapshot& snap) {
  TextWriter w;
  GANTRY_RETURN_IF_ERROR(RenderJobs(snap, w));
  GANTRY_RETURN_IF_ERROR(RenderCounters(snap, w));
  GANTRY_RETURN_IF_ERROR(RenderAlertsAndDrift(snap, w));
  GANTRY_RETURN_IF_ERROR(RenderServing(snap, w));
  return w.Release();
}

}  // namespace gantry::prometheus
