#include "common/ingest_wire.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace gantry {
namespace {

static_assert(std::endian::native == std::endian::little, "serving samples are sent as raw little-endian floats");

json HistogramJson(const ServingHistogram& h) {
  return {{"bounds", h.bounds}, {"counts", h.counts}, {"count", h.count}, {"sum", h.sum}};
}

Status Bad(const char* type, const std::string& why) { return Status::InvalidArgument(std::string(type) + ": " + why); }

// body[key] as a count (an integer >= 0); 0 when absent.
Result<uint64_t> Count(const json& body, const char* type, const std::string& key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return uint64_t{0};
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer() && it->get<int64_t>() >= 0) return static_cast<uint64_t>(it->get<int64_t>());
  return Bad(type, "field '" + key + "' must be an integer >= 0");
}

Result<std::optional<double>> Ratio(const json& obj, const char* type, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<double>();
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0 || it->get<double>() > 1) {
    return Bad(type, "field '" + key + "' must be a number in [0, 1]");
  }
  return std::optional<double>(it->get<double>());
}

Result<std::string> Name(const json& body, const char* type, const char* key, bool required) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    if (required) return Bad(type, std::string("field '") + key + "' is missing");
    return std::string();
  }
  if (!it->is_string()) return Bad(type, std::string("field '") + key + "' must be a string");
  std::string v = it->get<std::string>();
  if ((required && v.empty()) || v.size() > 256) return Bad(type, std::string("field '") + key + "' must be 1..256 characters");
  return v;
}

Result<ServingHistogram> HistogramFrom(const json& body, const char* type, const char* key) {
  ServingHistogram h;
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return h;
  const std::string f = std::string("field '") + key + "'";
  if (!it->is_object()) return Bad(type, f + " must be a map {bounds, counts, count, sum}");
  const json& j = *it;
  if (!j.contains("bounds") || !j["bounds"].is_array() || !j.contains("counts") || !j["counts"].is_array()) {
    return Bad(type, f + " needs the lists 'bounds' and 'counts'");
  }
  if (j["bounds"].empty() && j["counts"].empty()) return h;  // nothing observed, no buckets
  if (j["bounds"].size() > kMaxServingBuckets || j["counts"].size() != j["bounds"].size() + 1) {
    return Bad(type, f + ": 'counts' must have one entry more than 'bounds' (at most " +
                         std::to_string(kMaxServingBuckets) + " bounds)");
  }
  uint64_t total = 0;
  for (const json& b : j["bounds"]) {
    if (!b.is_number() || !std::isfinite(b.get<double>())) return Bad(type, f + ": bounds must be finite numbers");
    const double v = b.get<double>();
    if (!h.bounds.empty() && !(v > h.bounds.back())) return Bad(type, f + ": bounds must be ascending");
    h.bounds.push_back(v);
  }
  for (const json& c : j["counts"]) {
    if (!c.is_number_unsigned() && !(c.is_number_integer() && c.get<int64_t>() >= 0)) {
      return Bad(type, f + ": counts must be integers >= 0");
    }
    h.counts.push_back(c.get<uint64_t>());
    total += h.counts.back();
  }
  GANTRY_ASSIGN_OR_RETURN(h.count, Count(j, type, "count"));
  if (h.count != total) return Bad(type, f + ": 'count' is not the sum of 'counts'");
  auto sum = j.find("sum");
  if (sum != j.end() && !sum->is_null()) {
    if (!sum->is_number() || !std::isfinite(sum->get<double>())) return Bad(type, f + ": 'sum' must be a finite number");
    h.sum = sum->get<double>();
  }
  return h;
}

Status Header(const json& body, const char* type, std::string* deployment, std::string* model, std::string* version,
              double* time) {
  GANTRY_ASSIGN_OR_RETURN(*deployment, Name(body, type, "deployment", true));
  GANTRY_ASSIGN_OR_RETURN(*model, Name(body, type, "model", true));
  GANTRY_ASSIGN_OR_RETURN(*version, Name(body, type, "version", false));
  auto t = body.find("time");
  if (t == body.end() || !t->is_number() || !std::isfinite(t->get<double>())) {
    return Bad(type, "field 'time' must be a finite number (unix seconds)");
  }
  *time = t->get<double>();
  return Status::Ok();
}

std::string Frame(const char* type, json body) {
  return ToMsgpack({{"v", kProtocolVersion}, {"type", type}, {"id", ""}, {"body", std::move(body)}});
}

}  // namespace

std::string EncodeMetricsMessage(const MetricsMessage& m) {
  json body = {{"job_id", m.job_id},
               {"attempt", m.attempt},
               {"rank", m.rank},
               {"world_size", m.world_size},
               {"step", m.step},
               {"total_steps", m.total_steps},
               {"epoch", m.epoch},
               {"time", m.time},
               {"values", m.values}};
  if (m.seq > 0) body["seq"] = m.seq;
  return Frame(kIngestMetricsType, std::move(body));
}

std::string EncodeJobStateMessage(const JobStateMessage& m) {
  json body = {{"job_id", m.job_id}, {"state", m.state}, {"attempt", m.attempt}, {"reason", m.reason}, {"time", m.time}};
  if (!m.name.empty()) body["name"] = m.name;
  if (!m.alerts.is_null()) body["alerts"] = m.alerts;
  return Frame(kIngestJobStateType, body);
}

std::string EncodeIngestAck(const IngestAck& a) {
  return Frame(kIngestAckType, {{"job_id", a.job_id}, {"attempt", a.attempt}, {"rank", a.rank}, {"seq", a.seq}});
}

Result<IngestAck> DecodeIngestAck(std::string_view frame) {
  GANTRY_ASSIGN_OR_RETURN(json j, ParseMsgpack(frame));
  if (!j.is_object()) return Status::InvalidArgument("ingest_ack: message must be a map");
  auto type = GetString(j, "type");
  if (!type.ok() || *type != kIngestAckType) return Status::InvalidArgument("not an ingest_ack message");
  auto body = j.find("body");
  if (body == j.end() || !body->is_object()) return Status::InvalidArgument("ingest_ack: field 'body' must be a map");
  IngestAck a;
  GANTRY_ASSIGN_OR_RETURN(a.job_id, GetString(*body, "job_id"));
  GANTRY_ASSIGN_OR_RETURN(a.attempt, GetInt(*body, "attempt"));
  GANTRY_ASSIGN_OR_RETURN(a.rank, GetInt(*body, "rank"));
  GANTRY_ASSIGN_OR_RETURN(a.seq, GetInt(*body, "seq"));
  return a;
}

std::string EncodeServingMetricsMessage(const ServingMetricsMessage& m) {
  json codes = json::object();
  for (const auto& [code, n] : m.errors_by_code) codes[std::to_string(code)] = n;
  json classes = json::array();
  for (const ServingClassStats& c : m.per_class) {
    json e = {{"class", c.label}, {"support", c.support}};
    if (c.precision) e["precision"] = *c.precision;
    if (c.recall) e["recall"] = *c.recall;
    classes.push_back(std::move(e));
  }
  json body = {{"deployment", m.deployment},
               {"model", m.model},
               {"version", m.version},
               {"time", m.time},
               {"seq", m.seq},
               {"requests", m.requests},
               {"succeeded", m.succeeded},
               {"errors_by_code", std::move(codes)},
               {"errors_by_kind", m.errors_by_kind},
               {"latency_seconds", HistogramJson(m.latency_seconds)},
               {"batch_size", HistogramJson(m.batch_size)},
               {"input", {{"non_finite", m.non_finite},
                          {"wrong_shape", m.wrong_shape},
                          {"wrong_datatype", m.wrong_datatype},
                          {"out_of_range_requests", m.out_of_range_requests},
                          {"out_of_range_values", m.out_of_range_values}}},
               {"feedback", {{"window_outcomes", m.window_outcomes},
                             {"labels_matched", m.labels_matched},
                             {"per_class", std::move(classes)}}},
               {"reporter", {{"samples_sent", m.samples_sent},
                             {"samples_dropped", m.samples_dropped},
                             {"reports_dropped", m.reports_dropped}}}};
  if (m.accuracy) body["feedback"]["accuracy"] = *m.accuracy;
  return Frame(kIngestServingMetricsType, std::move(body));
}

std::string EncodeServingSamplesMessage(const ServingSamplesMessage& m) {
  std::vector<uint8_t> bytes(m.inputs.size() * sizeof(float));
  if (!bytes.empty()) std::memcpy(bytes.data(), m.inputs.data(), bytes.size());
  json body = {{"deployment", m.deployment}, {"model", m.model},       {"version", m.version},
               {"time", m.time},             {"row_size", m.row_size}, {"predictions", m.predictions},
               {"inputs", json::binary(std::move(bytes))}};
  return Frame(kIngestServingSamplesType, std::move(body));
}

Result<ServingMetricsMessage> DecodeServingMetricsBody(const json& body) {
  const char* type = kIngestServingMetricsType;
  ServingMetricsMessage m;
  if (!body.is_object()) return Bad(type, "field 'body' must be a map");
  GANTRY_RETURN_IF_ERROR(Header(body, type, &m.deployment, &m.model, &m.version, &m.time));
  auto seq = body.find("seq");
  if (seq != body.end() && !seq->is_null()) {
    if (!seq->is_number_integer() || seq->get<int64_t>() < 0) return Bad(type, "field 'seq' must be an integer >= 0");
    m.seq = seq->get<int64_t>();
  }
  GANTRY_ASSIGN_OR_RETURN(m.requests, Count(body, type, "requests"));
  GANTRY_ASSIGN_OR_RETURN(m.succeeded, Count(body, type, "succeeded"));
  if (m.succeeded > m.requests) return Bad(type, "field 'succeeded' exceeds 'requests'");
  if (auto it = body.find("errors_by_code"); it != body.end() && !it->is_null()) {
    if (!it->is_object() || it->size() > kMaxServingErrorKinds) {
      return Bad(type, "field 'errors_by_code' must be a map {\"400\": n} of at most " +
                           std::to_string(kMaxServingErrorKinds) + " codes");
    }
    for (const auto& [code, n] : it->items()) {
      int c = 0;
      try {
        size_t used = 0;
        c = std::stoi(code, &used);
        if (used != code.size()) throw std::invalid_argument(code);
      } catch (const std::exception&) {
        return Bad(type, "errors_by_code: '" + code + "' is not an HTTP status");
      }
      if (c < 100 || c > 599) return Bad(type, "errors_by_code: " + code + " is not an HTTP status (100..599)");
      GANTRY_ASSIGN_OR_RETURN(m.errors_by_code[c], Count(*it, type, code));
    }
  }
  if (auto it = body.find("errors_by_kind"); it != body.end() && !it->is_null()) {
    if (!it->is_object() || it->size() > kMaxServingErrorKinds) {
      return Bad(type, "field 'errors_by_kind' must be a map {kind: n} of at most " +
                           std::to_string(kMaxServingErrorKinds) + " kinds");
    }
    for (const auto& [kind, n] : it->items()) {
      if (kind.empty() || kind.size() > 64) return Bad(type, "errors_by_kind: kinds must be 1..64 characters");
      GANTRY_ASSIGN_OR_RETURN(m.errors_by_kind[kind], Count(*it, type, kind));
    }
  }
  GANTRY_ASSIGN_OR_RETURN(m.latency_seconds, HistogramFrom(body, type, "latency_seconds"));
  GANTRY_ASSIGN_OR_RETURN(m.batch_size, HistogramFrom(body, type, "batch_size"));
  const json empty = json::object();
  auto section = [&](const char* key) -> Result<const json*> {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return &empty;
    if (!it->is_object()) return Bad(type, std::string("field '") + key + "' must be a map");
    return &*it;
  };
  GANTRY_ASSIGN_OR_RETURN(const json* input, section("input"));
  GANTRY_ASSIGN_OR_RETURN(m.non_finite, Count(*input, type, "non_finite"));
  GANTRY_ASSIGN_OR_RETURN(m.wrong_shape, Count(*input, type, "wrong_shape"));
  GANTRY_ASSIGN_OR_RETURN(m.wrong_datatype, Count(*input, type, "wrong_datatype"));
  GANTRY_ASSIGN_OR_RETURN(m.out_of_range_requests, Count(*input, type, "out_of_range_requests"));
  GANTRY_ASSIGN_OR_RETURN(m.out_of_range_values, Count(*input, type, "out_of_range_values"));
  GANTRY_ASSIGN_OR_RETURN(const json* fb, section("feedback"));
  GANTRY_ASSIGN_OR_RETURN(m.accuracy, Ratio(*fb, type, "accuracy"));
  GANTRY_ASSIGN_OR_RETURN(m.window_outcomes, Count(*fb, type, "window_outcomes"));
  GANTRY_ASSIGN_OR_RETURN(m.labels_matched, Count(*fb, type, "labels_matched"));
  if (auto it = fb->find("per_class"); it != fb->end() && !it->is_null()) {
    if (!it->is_array() || it->size() > kMaxServingClasses) {
      return Bad(type, "field 'feedback.per_class' must be a list of at most " + std::to_string(kMaxServingClasses));
    }
    for (const json& c : *it) {
      if (!c.is_object() || !c.contains("class") || !c["class"].is_number_integer()) {
        return Bad(type, "feedback.per_class entries need an integer 'class'");
      }
      ServingClassStats s;
      s.label = c["class"].get<int64_t>();
      GANTRY_ASSIGN_OR_RETURN(s.precision, Ratio(c, type, "precision"));
      GANTRY_ASSIGN_OR_RETURN(s.recall, Ratio(c, type, "recall"));
      GANTRY_ASSIGN_OR_RETURN(s.support, Count(c, type, "support"));
      m.per_class.push_back(s);
    }
  }
  GANTRY_ASSIGN_OR_RETURN(const json* rep, section("reporter"));
  GANTRY_ASSIGN_OR_RETURN(m.samples_sent, Count(*rep, type, "samples_sent"));
  GANTRY_ASSIGN_OR_RETURN(m.samples_dropped, Count(*rep, type, "samples_dropped"));
  GANTRY_ASSIGN_OR_RETURN(m.reports_dropped, Count(*rep, type, "reports_dropped"));
  return m;
}

Result<ServingSamplesMessage> DecodeServingSamplesBody(const json& body) {
  const char* type = kIngestServingSamplesType;
  ServingSamplesMessage m;
  if (!body.is_object()) return Bad(type, "field 'body' must be a map");
  GANTRY_RETURN_IF_ERROR(Header(body, type, &m.deployment, &m.model, &m.version, &m.time));
  auto rs = body.find("row_size");
  if (rs == body.end() || !rs->is_number_integer() || rs->get<int64_t>() < 1 || rs->get<int64_t>() > kMaxServingRowSize) {
    return Bad(type, "field 'row_size' must be an integer in 1.." + std::to_string(kMaxServingRowSize));
  }
  m.row_size = rs->get<int64_t>();
  auto preds = body.find("predictions");
  if (preds == body.end() || !preds->is_array() || preds->empty()) {
    return Bad(type, "field 'predictions' must be a non-empty list of classes");
  }
  for (const json& p : *preds) {
    if (!p.is_number_integer()) return Bad(type, "predictions must be integers");
    m.predictions.push_back(p.get<int64_t>());
  }
  auto in = body.find("inputs");
  if (in == body.end() || !in->is_binary()) return Bad(type, "field 'inputs' must be binary (float32 rows)");
  const auto& bytes = in->get_binary();
  const size_t want = m.predictions.size() * static_cast<size_t>(m.row_size) * sizeof(float);
  if (bytes.size() != want) {
    return Bad(type, "field 'inputs' has " + std::to_string(bytes.size()) + " bytes, " +
                         std::to_string(m.predictions.size()) + " rows of " + std::to_string(m.row_size) +
                         " float32 need " + std::to_string(want));
  }
  m.inputs.resize(bytes.size() / sizeof(float));
  if (!bytes.empty()) std::memcpy(m.inputs.data(), bytes.data(), bytes.size());
  for (float v : m.inputs) {
    if (!std::isfinite(v)) return Bad(type, "field 'inputs' holds NaN or Inf");
  }
  return m;
}

}  // namespace gantry
