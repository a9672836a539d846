// Builders of the messages pushed to the monitor's ingest socket
// (docs/protocol.md, "Monitor ingest"). The worker (metrics) and the
// coordinator (job_state) encode with these; monitor/ingest_message.h parses
// and validates the same frames. Each frame is
//   ToMsgpack({v: 1, type, id: "", body})
// with the bodies below.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "common/protocol.h"

namespace gantry {

inline constexpr const char* kIngestMetricsType = "metrics";
inline constexpr const char* kIngestJobStateType = "job_state";

// body of a `metrics` message. `values` is a map of name -> number
// (NaN/Inf allowed).
struct MetricsMessage {
  std::string job_id;
  int64_t attempt = 1;
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t step = 0;
  int64_t total_steps = 0;  // 0 = not known
  int64_t epoch = 0;
  double time = 0;  // unix seconds
  json values = json::object();
};

// body of a `job_state` message.
struct JobStateMessage {
  std::string job_id;
  std::string state;  // QUEUED, RUNNING, ... (coordinator/job.h)
  int64_t attempt = 0;
  std::string reason;
  double time = 0;  // unix seconds
  std::string name;  // the job's name; omitted when empty
  json alerts;       // the spec's `alerts:` list; omitted when null
};

std::string EncodeMetricsMessage(const MetricsMessage& m);
std::string EncodeJobStateMessage(const JobStateMessage& m);

}  // namespace gantry
