#include "monitor/prometheus/text_writer.h"

#include <charconv>
#include <cmath>

namespace gantry::prometheus {
namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view TypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
    case MetricType::kUntyped: break;
  }
  return "untyped";
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

bool ValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = IsAlpha(c) || c == '_' || c == ':' || (i > 0 && IsDigit(c));
    if (!ok) return false;
  }
  return true;
}

bool ValidLabelName(std::string_view name) {
  if (name.empty() || name.substr(0, 2) == "__") return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(IsAlpha(c) || c == '_' || (i > 0 && IsDigit(c)))) return false;
  }
  return true;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, res.ptr);
}

Status TextWriter::BeginFamily(std::string_view name, MetricType type, std::string_view help) {
  if (!ValidMetricName(name)) {
    return Status::InvalidArgument("prometheus: invalid metric name '" + std::string(name) + "'");
  }
  if (families_.count(name) != 0) {
    return Status::AlreadyExists("prometheus: metric family '" + std::string(name) + "' written twice");
  }
  if (type == MetricType::kCounter && !EndsWith(name, "_total")) {
    return Status::InvalidArgument("prometheus: counter '" + std::string(name) + "' must end in _total");
  }
  if (type != MetricType::kCounter && EndsWith(name, "_total")) {
    return Status::InvalidArgument("prometheus: only counters end in _total ('" + std::string(name) + "')");
  }
  families_.emplace(name);
  family_ = std::string(name);
  type_ = type;
  open_ = true;
  out_ += "# HELP " + family_ + " " + EscapeHelp(help) + "\n";
  out_ += "# TYPE " + family_ + " " + std::string(TypeName(type)) + "\n";
  return Status::Ok();
}

Status TextWriter::CheckLabels(const Labels& labels, bool histogram) const {
  std::set<std::string_view> seen;
  for (const Label& l : labels) {
    if (!ValidLabelName(l.name)) {
      return Status::InvalidArgument("prometheus: invalid label name '" + l.name + "' on " + family_);
    }
    if (histogram && l.name == "le") {
      return Status::InvalidArgument("prometheus: label 'le' is reserved for histogram buckets");
    }
    if (!seen.insert(l.name).second) {
      return Status::InvalidArgument("prometheus: label '" + l.name + "' repeated on " + family_);
    }
  }
  return Status::Ok();
}

void TextWriter::WriteSample(std::string_view name, const Labels& labels, const Label* extra,
                             double value) {
  out_ += name;
  if (!labels.empty() || extra != nullptr) {
    out_ += '{';
    bool first = true;
    auto put = [&](const Label& l) {
      if (!first) out_ += ',';
      first = false;
      out_ += l.name;
      out_ += "=\"";
      out_ += EscapeLabelValue(l.value);
      out_ += '"';
    };
    for (const Label& l : labels) put(l);
    if (extra != nullptr) put(*extra);
    out_ += '}';
  }
  out_ += ' ';
  out_ += FormatValue(value);
  out_ += '\n';
}

Status TextWriter::Add(const Labels& labels, double value) {
  if (!open_) return Status::FailedPrecondition("prometheus: Add before BeginFamily");
  if (type_ == MetricType::kHistogram) {
    return Status::FailedPrecondition("prometheus: " + family_ + " is a histogram; use AddHistogram");
  }
  GANTRY_RETURN_IF_ERROR(CheckLabels(labels, false));
  WriteSample(family_, labels, nullptr, value);
  return Status::Ok();
}

Status TextWriter::AddHistogram(const Labels& labels, const HistogramValue& value) {
  if (!open_ || type_ != MetricType::kHistogram) {
    return Status::FailedPrecondition("prometheus: AddHistogram outside a histogram family");
  }
  GANTRY_RETURN_IF_ERROR(CheckLabels(labels, true));
  double prev_bound = -INFINITY;
  uint64_t prev_count = 0;
  for (const auto& [bound, count] : value.buckets) {
    if (!(bound > prev_bound) || std::isinf(bound) || count < prev_count || count > value.count) {
      return Status::InvalidArgument("prometheus: " + family_ +
                                     " buckets must have increasing finite bounds and cumulative counts");
    }
    prev_bound = bound;
    prev_count = count;
  }
  std::string bucket = family_ + "_bucket";
  for (const auto& [bound, count] : value.buckets) {
    Label le{"le", FormatValue(bound)};
    WriteSample(bucket, labels, &le, static_cast<double>(count));
  }
  Label inf{"le", "+Inf"};
  WriteSample(bucket, labels, &inf, static_cast<double>(value.count));
  WriteSample(family_ + "_sum", labels, nullptr, value.sum);
  WriteSample(family_ + "_count", labels, nullptr, static_cast<double>(value.count));
  return Status::Ok();
}

}  // namespace gantry::prometheus
