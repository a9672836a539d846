#include "common/ingest_wire.h"

namespace gantry {
namespace {

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

}  // namespace gantry
