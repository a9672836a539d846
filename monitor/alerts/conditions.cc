#include "monitor/alerts/conditions.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "monitor/alerts/engine.h"

namespace gantry::monitor::alerts {

std::optional<double> Median(std::span<const double> v) {
  if (v.empty()) return std::nullopt;
  std::vector<double> c(v.begin(), v.end());
  size_t mid = c.size() / 2;
  std::nth_element(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(mid), c.end());
  double hi = c[mid];
  if (c.size() % 2 == 1) return hi;
  double lo = *std::max_element(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lo + hi) / 2;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string FormatDuration(double seconds) {
  auto s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  int64_t h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
  std::string out;
  if (h > 0) out = std::to_string(h) + "h" + (m > 0 ? " " + std::to_string(m) + "m" : "");
  else if (m > 0) out = std::to_string(m) + "m" + (sec > 0 ? " " + std::to_string(sec) + "s" : "");
  else out = std::to_string(sec) + "s";
  return out;
}

std::string MetricLabel(const std::string& metric) {
  return metric == "samples_per_sec" ? "samples/s" : metric;
}

Evaluation EvalThreshold(const Rule& rule, double value, int64_t step, bool explain) {
  Evaluation e;
  e.value = value;
  e.holds = Compare(value, rule.op, rule.value);  // NaN compares false
  if (!e.holds && !explain) return e;
  e.why = MetricLabel(rule.metric) + " is " + FormatValue(value) + (e.holds ? " " : ", not ") +
          OpName(rule.op) + " " + FormatValue(rule.value) + ", at step " + std::to_string(step);
  return e;
}

Evaluation EvalNonFinite(const Rule& rule, double value, int64_t step, bool explain) {
  Evaluation e;
  e.value = value;
  e.holds = !std::isfinite(value);
  if (!e.holds && !explain) return e;
  e.why = MetricLabel(rule.metric) + " is " + FormatValue(value) + " at step " + std::to_string(step);
  return e;
}

Evaluation EvalNoProgress(const Rule& rule, bool running, double idle, int64_t last_step, bool explain) {
  Evaluation e;
  e.value = idle;
  e.holds = running && idle >= rule.after_seconds;
  if (!e.holds && !explain) return e;
  if (!running) {
    e.why = "the job is not running";
  } else if (e.holds) {
    e.why = "no new step for " + FormatDuration(idle) + " (last step " + std::to_string(last_step) + ")";
  } else {
    e.why = "step " + std::to_string(last_step) + " " + FormatDuration(idle) + " ago";
  }
  return e;
}

Evaluation EvalThroughputDrop(const Rule& rule, double value, double median, int64_t step, bool explain) {
  Evaluation e;
  e.value = value;
  double below = median > 0 ? (1 - value / median) * 100 : 0;
  e.holds = median > 0 && value < (1 - rule.drop_percent / 100) * median;
  if (!e.holds && !explain) return e;
  std::string label = MetricLabel(rule.metric);
  if (below > 0) {
    e.why = label + " " + FormatValue(value) + " is " + std::to_string(std::lround(below)) +
            "% below the job's median " + FormatValue(median);
  } else {
    e.why = label + " " + FormatValue(value) + " is at or above the job's median " + FormatValue(median);
  }
  e.why += " at step " + std::to_string(step);
  return e;
}

Evaluation EvalStraggler(const Rule& rule, int64_t rank, double value, double others_median, bool explain) {
  Evaluation e;
  e.value = value;
  e.holds = others_median > 0 && value > rule.factor * others_median;
  if (!e.holds && !explain) return e;
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.2f", others_median > 0 ? value / others_median : 0.0);
  e.why = "rank " + std::to_string(rank) + " " + MetricLabel(rule.metric) + " " + FormatValue(value) + " is " +
          ratio + "x the median " + FormatValue(others_median) + " of the other ranks (limit " +
          FormatValue(rule.factor) + "x)";
  return e;
}

Evaluation EvalDrift(const Rule& rule, const DriftSample& d) {
  Evaluation e;
  e.value = d.share;
  double limit = rule.share ? *rule.share : d.share_threshold;
  e.holds = rule.share ? d.share >= *rule.share : d.dataset_drift;
  e.why = std::to_string(d.drifted) + " of " + std::to_string(d.tested) + " features drifted (" +
          FormatValue(d.share * 100) + "%, limit " + FormatValue(limit * 100) + "%)";
  return e;
}

}  // namespace gantry::monitor::alerts
