#include "common/ingest_wire.h"

namespace gantry {
namespace {

std::string Frame(const char* type, json body) {
  return ToMsgpack({{"v", kProtocolVersion}, {"type", type}, {"id", ""}, {"body", std::move(body)}});
}

}  // namespace

std::string EncodeMetricsMessage(const MetricsMessage& m) {
  return Frame(kIngestMetricsType, {{"job_id", m.job_id},
                                    {"attempt", m.attempt},
                                    {"rank", m.rank},
                                    {"world_size", m.world_size},
                                    {"step", m.step},
                                    {"total_steps", m.total_steps},
                                    {"epoch", m.epoch},
                                    {"time", m.time},
                                    {"values", m.values}});
}

std::string EncodeJobStateMessage(const JobStateMessage& m) {
  json body = {{"job_id", m.job_id}, {"state", m.state}, {"attempt", m.attempt}, {"reason", m.reason}, {"time", m.time}};
  if (!m.name.empty()) body["name"] = m.name;
  if (!m.alerts.is_null()) body["alerts"] = m.alerts;
  return Frame(kIngestJobStateType, body);
}

}  // namespace gantry
