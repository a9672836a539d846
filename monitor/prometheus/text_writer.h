// Prometheus text exposition format 0.0.4 writer.
//
// A page is a sequence of metric families; each family has one name, one
// type and one HELP line, followed by its samples. The writer validates
// names (metric `[a-zA-Z_:][a-zA-Z0-9_:]*`, label `[a-zA-Z_][a-zA-Z0-9_]*`,
// no `__` prefix, counters end in `_total`, `le` reserved for histogram
// buckets, no family written twice), escapes label values (backslash,
// double quote, newline) and HELP text (backslash, newline), and formats
// values the way Prometheus parses them (`+Inf`, `-Inf`, `NaN`, otherwise the
// shortest decimal that round-trips). An invalid name or label is an error
// Status and writes nothing, so a page never carries a line Prometheus
// would refuse.
//
// Thread safety: none; one writer per rendered page.
#pragma once

#include <string>
#include <string_view>
#include <set>
#include <utility>
#include <vector>

#include "common/status.h"

namespace gantry::prometheus {

enum class MetricType { kCounter, kGauge, kHistogram, kUntyped };

struct Label {
  std::string name;
  std::string value;
};
using Labels = std::vector<Label>;

// One histogram observation set. `buckets` are (upper bound, cumulative
// count) pairs in increasing bound order; the +Inf bucket is added by the
// writer from `count` and must not be listed.
struct HistogramValue {
  std::vector<std::pair<double, uint64_t>> buckets;
  double sum = 0;
  uint64_t count = 0;
};

bool ValidMetricName(std::string_view name);
bool ValidLabelName(std::string_view name);
// `a"b\` -> `a\"b\\`, newline -> `\n`.
std::string EscapeLabelValue(std::string_view value);
// "+Inf", "-Inf", "NaN", or the shortest round-trip decimal ("0.25", "1e+30").
std::string FormatValue(double value);

class TextWriter {
 public:
  // Starts a family: writes `# HELP` and `# TYPE`. Fails on an invalid or
  // repeated name, or a counter whose name does not end in `_total`.
  Status BeginFamily(std::string_view name, MetricType type, std::string_view help);
  // One sample of the current counter/gauge/untyped family.
  Status Add(const Labels& labels, double value);
  // One labelled histogram of the current histogram family: its _bucket
  // lines (with `le`, including +Inf), _sum and _count.
  Status AddHistogram(const Labels& labels, const HistogramValue& value);
  // The page so far ("text/plain; version=0.0.4; charset=utf-8").
  const std::string& text() const { return out_; }
  std::string Release() { return std::move(out_); }

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  Status CheckLabels(const Labels& labels, bool histogram) const;
  void WriteSample(std::string_view name, const Labels& labels, const Label* extra, double value);

  std::string out_;
  std::string family_;
  MetricType type_ = MetricType::kUntyped;
  bool open_ = false;
  std::set<std::string, std::less<>> families_;
};

}  // namespace gantry::prometheus
