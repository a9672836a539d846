// MetricsSnapshot: everything the monitor exposes on `GET /metrics`, as one
// typed value, and RenderPrometheus() that turns it into a text format 0.0.4
// page. The monitor fills a snapshot from its own state (job table, metrics
// store, alert engine, drift results) when a scrape arrives; this file knows
// nothing of where the numbers come from. The metric names and labels are
// listed in docs/monitor.md ("HTTP, token and Prometheus metrics").
//
// Conventions: base units (seconds, ratios in [0, 1]), `_total` on counters,
// one family per quantity with the variable part in labels. Label values are
// free text (escaped by the writer). Keep cardinality bounded where the
// snapshot is built: only running jobs, and per dataset at most the N most
// drifted features.
//
// Thread safety: plain values; RenderPrometheus is a pure function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "monitor/prometheus/text_writer.h"

namespace gantry::prometheus {

struct RankStepTime {
  int64_t rank = 0;
  double step_seconds = 0;  // latest step time of this rank
};

// The latest values of one running job (rank 0's metrics, every rank's step time).
struct RunningJobMetrics {
  std::string job_id;
  int64_t attempt = 0;
  int64_t step = 0;
  std::optional<double> loss;
  std::optional<double> accuracy;             // ratio in [0, 1]
  std::optional<double> samples_per_second;
  std::vector<RankStepTime> ranks;
};

struct IngestCounters {
  uint64_t points = 0;      // metric points accepted (after dedup)
  uint64_t events = 0;      // events accepted
  uint64_t duplicates = 0;  // points dropped as already seen
  uint64_t dropped = 0;     // messages dropped (malformed, oversized)
  std::optional<HistogramValue> batch_seconds;  // SQLite batch commit durations
};

// How many alerts of one rule are in one state (inactive, pending, firing, resolved).
struct AlertStateCount {
  std::string rule;
  std::string state;
  int64_t count = 0;
};

struct FeatureDriftScore {
  std::string feature;
  std::string statistic;  // "ks", "psi", "js", "wasserstein", "chi2"
  double value = 0;
  std::optional<double> p_value;
};

struct DatasetDrift {
  std::string dataset;
  double share_drifted = 0;  // share of features judged drifted, [0, 1]
  bool drifted = false;      // the dataset verdict
  double checked_at = 0;     // unix seconds of the last check
  std::vector<FeatureDriftScore> features;  // the most drifted first, bounded
};

// One served model of one deployment (gantry-serve's latest report).
struct ServingClassScore {
  int64_t label = 0;
  std::optional<double> precision;
  std::optional<double> recall;
};

struct ServingModelMetrics {
  std::string deployment;
  std::string model;
  std::string version;
  // HTTP status -> requests answered with it ("200" = succeeded).
  std::vector<std::pair<std::string, uint64_t>> requests_by_code;
  HistogramValue latency_seconds;
  HistogramValue batch_size;
  // non_finite, wrong_shape, wrong_datatype, out_of_range (requests).
  std::vector<std::pair<std::string, uint64_t>> input_anomalies;
  uint64_t out_of_range_values = 0;
  std::optional<double> accuracy;  // live, over the feedback window
  uint64_t feedback_window = 0;
  uint64_t feedback_labels = 0;
  std::vector<ServingClassScore> per_class;
  uint64_t samples_sent = 0;
  uint64_t samples_dropped = 0;
  uint64_t reports_dropped = 0;
  double last_report = 0;  // unix seconds
};

struct MetricsSnapshot {
  // Jobs per state; every state of the job state machine should be listed
  // (with 0) so that a series does not vanish when its count drops to zero.
  std::vector<std::pair<std::string, int64_t>> jobs_by_state;
  int64_t queue_depth = 0;
  std::vector<RunningJobMetrics> running_jobs;
  uint64_t checkpoints_saved = 0;
  uint64_t checkpoints_failed = 0;
  IngestCounters ingest;
  std::vector<AlertStateCount> alerts;
  std::vector<DatasetDrift> drift;
  std::vector<ServingModelMetrics> serving;
};

// The page for `snap`. Fails only on a label or value the writer refuses
// (none for a snapshot built from the structs above: names are fixed, label
// values are escaped).
Result<std::string> RenderPrometheus(const MetricsSnapshot& snap);

}  // namespace gantry::prometheus
