// Builders of the messages sent to the monitor's ingest socket
// (docs/protocol.md, "Monitor ingest"). The worker (metrics) and the
// coordinator (job_state) encode with these; monitor/ingest_message.h parses
// and validates the same frames. Each frame is
//   ToMsgpack({v: 1, type, id: "", body})
// with the bodies below. The monitor answers a sender of sequenced metrics
// with `ingest_ack` frames on the same connection (DEALER -> ROUTER).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/protocol.h"

namespace gantry {

inline constexpr const char* kIngestMetricsType = "metrics";
inline constexpr const char* kIngestJobStateType = "job_state";
inline constexpr const char* kIngestAckType = "ingest_ack";

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
  // Per-(job_id, attempt, rank) sequence number, 1, 2, 3, ... in send
  // order; 0 = not sequenced (left out of the frame, never acknowledged).
  int64_t seq = 0;
};

// body of an `ingest_ack` message (monitor -> sender): every point of
// (job_id, attempt, rank) with a seq in 1..seq is committed to the monitor's
// store, so the sender may forget it.
struct IngestAck {
  std::string job_id;
  int64_t attempt = 0;
  int64_t rank = 0;
  int64_t seq = 0;
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
std::string EncodeIngestAck(const IngestAck& a);
// invalid_argument for anything but a well-formed `ingest_ack` frame.
Result<IngestAck> DecodeIngestAck(std::string_view frame);

}  // namespace gantry
