#include "monitor/ingest_message.h"

#include <cmath>

#include "common/ids.h"
#include "common/msgpack.h"
#include "monitor/ingest_metrics_reader.h"

namespace gantry::monitor {
namespace {

Status Bad(const std::string& type, const std::string& why) {
  return Status::InvalidArgument(type + ": " + why);
}

Result<int64_t> NonNegative(const json& body, const std::string& type, const char* key) {
  auto v = GetInt(body, key);
  if (!v.ok()) return v.status().WithContext(type);
  if (*v < 0) return Bad(type, std::string("field '") + key + "' must be >= 0 (got " + std::to_string(*v) + ")");
  return v;
}

Result<double> FiniteTime(const json& body, const std::string& type) {
  auto t = GetNumber(body, "time");
  if (!t.ok()) return t.status().WithContext(type);
  if (!std::isfinite(*t)) return Bad(type, "field 'time' must be finite");
  return t;
}

Result<MetricsPoint> ParseMetrics(const json& body) {
  const std::string type = kMetricsType;
  MetricsPoint p;
  auto job = GetString(body, "job_id");
  if (!job.ok()) return job.status().WithContext(type);
  p.job_id = *job;
  GANTRY_RETURN_IF_ERROR(ValidateName(p.job_id, type + ": job_id"));
  GANTRY_ASSIGN_OR_RETURN(p.attempt, NonNegative(body, type, "attempt"));
  GANTRY_ASSIGN_OR_RETURN(p.rank, NonNegative(body, type, "rank"));
  GANTRY_ASSIGN_OR_RETURN(p.step, NonNegative(body, type, "step"));
  GANTRY_ASSIGN_OR_RETURN(p.epoch, NonNegative(body, type, "epoch"));
  GANTRY_ASSIGN_OR_RETURN(p.time, FiniteTime(body, type));
  auto world_size = GetInt(body, "world_size", 0);
  if (!world_size.ok()) return world_size.status().WithContext(type);
  auto total = GetInt(body, "total_steps", 0);
  if (!total.ok()) return total.status().WithContext(type);
  p.total_steps = *total;
  if (p.total_steps < 0) return Bad(type, "field 'total_steps' must be >= 0");
  auto seq = GetInt(body, "seq", 0);
  if (!seq.ok()) return seq.status().WithContext(type);
  if (*seq < 0) return Bad(type, "field 'seq' must be >= 0");
  p.seq = *seq;
  auto values = body.find("values");
  if (values == body.end() || !values->is_object() || values->empty()) {
    return Bad(type, "field 'values' must be a non-empty map {name: number}");
  }
  if (values->size() > kMaxValuesPerPoint) {
    return Bad(type, "field 'values' has " + std::to_string(values->size()) + " entries (at most " +
                         std::to_string(kMaxValuesPerPoint) + ")");
  }
  for (const auto& [name, v] : values->items()) {
    if (name.empty() || name.size() > kMaxMetricNameLength) {
      return Bad(type, "metric names must be 1.." + std::to_string(kMaxMetricNameLength) + " characters");
    }
    if (!v.is_number()) return Bad(type, "values." + name + " must be a number");
    p.values.emplace_back(name, v.get<double>());
  }
  return p;
}

Result<JobEvent> ParseJobState(const json& body) {
  const std::string type = kJobStateType;
  JobEvent e;
  auto job = GetString(body, "job_id");
  if (!job.ok()) return job.status().WithContext(type);
  e.job_id = *job;
  GANTRY_RETURN_IF_ERROR(ValidateName(e.job_id, type + ": job_id"));
  auto state = GetString(body, "state");
  if (!state.ok()) return state.status().WithContext(type);
  if (state->empty() || state->size() > 64) return Bad(type, "field 'state' must be 1..64 characters");
  e.state = *state;
  if (body.contains("attempt") && !body["attempt"].is_null()) {
    GANTRY_ASSIGN_OR_RETURN(e.attempt, NonNegative(body, type, "attempt"));
  }
  if (body.contains("reason") && !body["reason"].is_null()) {
    auto reason = GetString(body, "reason");
    if (!reason.ok()) return reason.status().WithContext(type);
    if (reason->size() > kMaxReasonLength) return Bad(type, "field 'reason' is too long");
    e.reason = *reason;
  }
  GANTRY_ASSIGN_OR_RETURN(e.time, FiniteTime(body, type));
  return e;
}

}  // namespace

std::string IngestMessage::job_id() const {
  if (const auto* m = std::get_if<ServingMetricsMessage>(&record)) return m->deployment + "/" + m->model;
  if (const auto* m = std::get_if<ServingSamplesMessage>(&record)) return m->deployment + "/" + m->model;
  if (const auto* p = std::get_if<MetricsPoint>(&record)) return p->job_id;
  return std::get<JobEvent>(record).job_id;
}

std::string IngestMessage::Topic() const {
  if (const auto* m = std::get_if<ServingMetricsMessage>(&record)) return "serving/" + m->deployment;
  if (const auto* m = std::get_if<ServingSamplesMessage>(&record)) return "serving/" + m->deployment;
  return "job/" + job_id();
}

std::string IngestMessage::FeedPayload() const {
  // The bytes of ToMsgpack({type, body}) (keys in nlohmann's sorted order),
  // written around the body instead of copying it into a new json.
  if (!raw_body.empty()) {
    std::string out;
    out.reserve(raw_body.size() + 8 + type.size() + 8);
    out += '\x82';
    out += "\xa4" "body";
    out += raw_body;
    out += "\xa4" "type";
    out += static_cast<char>(0xa0 | type.size());  // "metrics": a fixstr
    out += type;
    return out;
  }
  return msgpack::Write([&](auto& w) {
    w.MapHeader(2);
    w.String("body");
    w.Value(body);
    w.String("type");
    w.String(type);
  });
}

Result<IngestMessage> ParseIngestFrame(std::string_view frame) {
  {
    IngestMessage m;
    MetricsPoint p;
    std::string_view body;
    if (ReadMetricsFrame(frame, p, body)) {
      m.type = kMetricsType;
      m.raw_body.assign(body.data(), body.size());
      m.record = std::move(p);
      return m;
    }
  }
  GANTRY_ASSIGN_OR_RETURN(json j, ParseMsgpack(frame));
  if (!j.is_object()) return Status::InvalidArgument("ingest message must be a map");
  GANTRY_ASSIGN_OR_RETURN(int64_t v, GetInt(j, "v"));
  if (v != kProtocolVersion) {
    return Status::InvalidArgument("ingest protocol version " + std::to_string(v) + " not supported");
  }
  IngestMessage m;
  GANTRY_ASSIGN_OR_RETURN(m.type, GetString(j, "type"));
  auto body = j.find("body");
  if (body == j.end() || !body->is_object()) return Bad(m.type, "field 'body' must be a map");
  if (m.type == kMetricsType) {
    GANTRY_ASSIGN_OR_RETURN(m.record, ParseMetrics(*body));
  } else if (m.type == kJobStateType) {
    GANTRY_ASSIGN_OR_RETURN(m.record, ParseJobState(*body));
  } else if (m.type == kServingMetricsType) {
    GANTRY_ASSIGN_OR_RETURN(m.record, DecodeServingMetricsBody(*body));
  } else if (m.type == kServingSamplesType) {
    GANTRY_ASSIGN_OR_RETURN(m.record, DecodeServingSamplesBody(*body));
  } else {
    return Status::InvalidArgument("unknown ingest message type '" + m.type + "'");
  }
  m.body = std::move(*body);
  return m;
}

}  // namespace gantry::monitor
