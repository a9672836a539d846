// ServingView: the monitor's view of the deployed models, from the
// `serving_metrics` reports gantry-serve sends every second (common/
// ingest_wire.h). Per (deployment, model) it keeps the latest report and the
// request and error rates between the last two (per second, over the
// reporter's clock), so /metrics, /api/deployments and the page read one
// map. Entries not reported for `forget_after` seconds are dropped (an
// undeployed server stops reporting); at most `max_entries` are kept (the
// least recently reported goes first).
//
// Counters are cumulative per gantry-serve process: a restarted server
// starts again from 0, which Prometheus reads as a counter reset; the rates
// here restart too (no negative rate).
//
// Thread safety: every method locks one mutex (OnReport on the ingest
// thread, the rest on the HTTP threads).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/ingest_wire.h"
#include "monitor/prometheus/snapshot.h"

namespace gantry::monitor {

struct ServingEntry {
  ServingMetricsMessage latest;
  double received = 0;                     // monitor's unix seconds of the latest report
  std::optional<double> request_rate;      // requests per second between the last two reports
  std::optional<double> error_rate;        // failed requests per second over the same span
  std::optional<double> error_ratio;       // failed / answered over the same span (no requests: absent)
};

class ServingView {
 public:
  explicit ServingView(double forget_after = 600, size_t max_entries = 1000)
      : forget_after_(forget_after), max_entries_(max_entries) {}

  void OnReport(const ServingMetricsMessage& m, double now);
  // Newest report first; entries older than forget_after (against `now`) are dropped.
  std::vector<ServingEntry> List(double now);
  // Adds the serving families' data to `snap` (bounded like List).
  void Fill(prometheus::MetricsSnapshot& snap, double now);

 private:
  void ForgetLocked(double now);

  const double forget_after_;
  const size_t max_entries_;
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, ServingEntry> entries_;  // GUARDED_BY(mu_)
};

// Coarse quantile of a wire histogram (upper bound of the bucket holding q;
// the largest bound for the overflow bucket); absent when empty.
std::optional<double> HistogramQuantile(const ServingHistogram& h, double q);

}  // namespace gantry::monitor
