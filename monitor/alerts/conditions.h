// The condition of each rule kind: whether it holds for one observation, the
// value behind it and a sentence that says why ("loss is NaN at step 120").
// Pure functions; the engine owns the state they read.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "monitor/alerts/rule.h"

namespace gantry::monitor::alerts {

struct Evaluation {
  bool holds = false;
  double value = 0;
  std::string why;
};

// Median of `v` (the mean of the middle two for an even count); nullopt when empty.
std::optional<double> Median(std::span<const double> v);

// "12.5", "0.000131", "1420", "NaN", "+Inf".
std::string FormatValue(double v);
// "45s", "10m 5s", "2h 3m".
std::string FormatDuration(double seconds);
// How a metric reads in a sentence: samples_per_sec is "samples/s".
std::string MetricLabel(const std::string& metric);

// Each Eval* writes `why` when the condition holds, or when `explain` (the
// engine passes whether an instance of the rule is active, whose `why` a
// miss would replace): the common case, a rule that does not hold for a
// subject it never alerted on, formats nothing (it runs for every rule and
// every ingested point).
Evaluation EvalThreshold(const Rule& rule, double value, int64_t step, bool explain = true);
Evaluation EvalNonFinite(const Rule& rule, double value, int64_t step, bool explain = true);
// `idle` is how long the job has gone without a new step; `running` false
// (queued, restarting, preempted) never holds.
Evaluation EvalNoProgress(const Rule& rule, bool running, double idle, int64_t last_step, bool explain = true);
// `median` is the job's running median before this sample.
Evaluation EvalThroughputDrop(const Rule& rule, double value, double median, int64_t step, bool explain = true);
// `others_median` is the median of the other ranks' latest values.
Evaluation EvalStraggler(const Rule& rule, int64_t rank, double value, double others_median, bool explain = true);
struct DriftSample;
Evaluation EvalDrift(const Rule& rule, const DriftSample& d);

}  // namespace gantry::monitor::alerts
