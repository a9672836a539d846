// Messages that arrive on the monitor's ingest (PULL) socket, validated.
//
// Each is one frame, ToMsgpack of {v: 1, type, id?, body}:
//   metrics   {job_id, attempt, rank, world_size?, step, total_steps?, epoch,
//              time (unix s), values: {name: number}, seq?}; values may be
//              NaN/Inf; seq (>= 1) numbers the points of one (job_id,
//              attempt, rank) for acknowledgements and deduplication.
//   job_state {job_id, state, attempt?, reason?, time}
//   serving_metrics, serving_samples (gantry-serve; bodies and checks in
//              common/ingest_wire.h): counters of one served model, and
//              sampled request rows with their predicted classes. Not stored
//              as points: the monitor keeps the latest report per model
//              (serving_view.h) and windows the samples (serving_drift.h).
// ParseIngestFrame() never throws: a malformed frame (bad MessagePack, wrong
// types, unknown type, out-of-range values) is an invalid_argument Status.
//
// Thread safety: plain data and a pure function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/ingest_wire.h"
#include "common/protocol.h"

namespace gantry::monitor {

inline constexpr const char* kMetricsType = "metrics";
inline constexpr const char* kJobStateType = "job_state";
inline constexpr const char* kServingMetricsType = kIngestServingMetricsType;
inline constexpr const char* kServingSamplesType = kIngestServingSamplesType;
// Bounds on one message, so a single frame cannot blow up the store.
inline constexpr size_t kMaxValuesPerPoint = 1024;
inline constexpr size_t kMaxMetricNameLength = 256;
inline constexpr size_t kMaxReasonLength = 4096;

struct MetricsPoint {
  std::string job_id;
  int64_t attempt = 0;
  int64_t rank = 0;
  int64_t step = 0;
  int64_t epoch = 0;
  int64_t total_steps = 0;  // planned steps of the run; 0 = not reported
  double time = 0;
  std::vector<std::pair<std::string, double>> values;
  int64_t seq = 0;  // sender's sequence number; 0 = not sequenced
};

struct JobEvent {
  std::string job_id;
  std::string state;
  std::optional<int64_t> attempt;
  std::optional<std::string> reason;
  double time = 0;
};

struct IngestMessage {
  std::string type;  // kMetricsType, kJobStateType, kServingMetricsType or kServingSamplesType
  // As received, republished on the feed unchanged. A metrics message read
  // on the fast path (ingest_metrics_reader.h) has no json body: its bytes
  // are in raw_body instead (observers use `record`, not the body, for
  // points).
  json body;
  std::string raw_body;
  std::variant<MetricsPoint, JobEvent, ServingMetricsMessage, ServingSamplesMessage> record;

  // The job's id; for a serving message "<deployment>/<model>".
  std::string job_id() const;
  bool serving() const { return record.index() >= 2; }
  // Feed topic, "job/<job_id>", or "serving/<deployment>".
  std::string Topic() const;
  // Feed payload, ToMsgpack({type, body}).
  std::string FeedPayload() const;
};

Result<IngestMessage> ParseIngestFrame(std::string_view frame);

}  // namespace gantry::monitor
