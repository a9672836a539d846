#include "monitor/serving_view.h"

#include <algorithm>

namespace gantry::monitor {
namespace {

uint64_t Failed(const ServingMetricsMessage& m) { return m.requests - std::min(m.requests, m.succeeded); }

prometheus::HistogramValue Cumulative(const ServingHistogram& h) {
  prometheus::HistogramValue v;
  uint64_t cum = 0;
  for (size_t i = 0; i < h.bounds.size() && i < h.counts.size(); ++i) {
    cum += h.counts[i];
    v.buckets.emplace_back(h.bounds[i], cum);
  }
  v.sum = h.sum;
  v.count = h.count;
  return v;
}

}  // namespace

std::optional<double> HistogramQuantile(const ServingHistogram& h, double q) {
  if (h.count == 0 || h.bounds.empty()) return std::nullopt;
  const double want = q * static_cast<double>(h.count);
  uint64_t cum = 0;
  for (size_t i = 0; i < h.bounds.size() && i < h.counts.size(); ++i) {
    cum += h.counts[i];
    if (static_cast<double>(cum) >= want) return h.bounds[i];
  }
  return h.bounds.back();
}

void ServingView::OnReport(const ServingMetricsMessage& m, double now) {
  std::lock_guard lock(mu_);
  ServingEntry& e = entries_[{m.deployment, m.model}];
  const ServingMetricsMessage& prev = e.latest;
  const double span = m.time - prev.time;
  // Rates between two reports of the same process (counters did not go back).
  if (e.received > 0 && span > 0 && m.requests >= prev.requests && m.succeeded >= prev.succeeded) {
    const double requests = static_cast<double>(m.requests - prev.requests);
    const double failed = static_cast<double>(Failed(m) >= Failed(prev) ? Failed(m) - Failed(prev) : 0);
    e.request_rate = requests / span;
    e.error_rate = failed / span;
    e.error_ratio = requests > 0 ? std::optional<double>(failed / requests) : std::nullopt;
  } else if (e.received > 0) {
    e.request_rate.reset();
    e.error_rate.reset();
    e.error_ratio.reset();
  }
  e.latest = m;
  e.received = now;
  ForgetLocked(now);
}

void ServingView::ForgetLocked(double now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = now - it->second.received > forget_after_ ? entries_.erase(it) : std::next(it);
  }
  while (entries_.size() > max_entries_) {
    auto oldest = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
      return a.second.received < b.second.received;
    });
    entries_.erase(oldest);
  }
}

std::vector<ServingEntry> ServingView::List(double now) {
  std::lock_guard lock(mu_);
  ForgetLocked(now);
  std::vector<ServingEntry> out;
  for (const auto& [key, e] : entries_) out.push_back(e);
  std::stable_sort(out.begin(), out.end(), [](const ServingEntry& a, const ServingEntry& b) {
    return a.latest.deployment != b.latest.deployment ? a.latest.deployment < b.latest.deployment
                                                      : a.latest.model < b.latest.model;
  });
  return out;
}

void ServingView::Fill(prometheus::MetricsSnapshot& snap, double now) {
  for (const ServingEntry& e : List(now)) {
    const ServingMetricsMessage& m = e.latest;
    prometheus::ServingModelMetrics s;
    s.deployment = m.deployment;
    s.model = m.model;
    s.version = m.version;
    s.requests_by_code.emplace_back("200", m.succeeded);
    for (const auto& [code, n] : m.errors_by_code) s.requests_by_code.emplace_back(std::to_string(code), n);
    s.latency_seconds = Cumulative(m.latency_seconds);
    s.batch_size = Cumulative(m.batch_size);
    s.input_anomalies = {{"non_finite", m.non_finite},
                         {"wrong_shape", m.wrong_shape},
                         {"wrong_datatype", m.wrong_datatype},
                         {"out_of_range", m.out_of_range_requests}};
    s.out_of_range_values = m.out_of_range_values;
    s.accuracy = m.accuracy;
    s.feedback_window = m.window_outcomes;
    s.feedback_labels = m.labels_matched;
    for (const ServingClassStats& c : m.per_class) s.per_class.push_back({c.label, c.precision, c.recall});
    s.samples_sent = m.samples_sent;
    s.samples_dropped = m.samples_dropped;
    s.reports_dropped = m.reports_dropped;
    s.last_report = m.time;
    snap.serving.push_back(std::move(s));
  }
}

}  // namespace gantry::monitor
