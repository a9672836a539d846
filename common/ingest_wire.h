// Builders of the messages sent to the monitor's ingest socket
// (docs/protocol.md, "Monitor ingest"). The worker (metrics), the coordinator
// (job_state) and gantry-serve (serving_metrics, serving_samples) encode with
// these; monitor/ingest_message.h parses and validates the same frames (the
// serving bodies through the decoders below). Each frame is
//   ToMsgpack({v: 1, type, id: "", body})
// with the bodies below. The monitor answers a sender of sequenced metrics
// with `ingest_ack` frames on the same connection (DEALER -> ROUTER).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol.h"

namespace gantry {

inline constexpr const char* kIngestMetricsType = "metrics";
inline constexpr const char* kIngestJobStateType = "job_state";
inline constexpr const char* kIngestAckType = "ingest_ack";
inline constexpr const char* kIngestServingMetricsType = "serving_metrics";
inline constexpr const char* kIngestServingSamplesType = "serving_samples";

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

// A histogram as gantry-serve keeps it: ascending upper bounds and the count
// of each bucket (bounds.size() + 1 of them, the last above every bound).
struct ServingHistogram {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;
  uint64_t count = 0;
  double sum = 0;
};

struct ServingClassStats {
  int64_t label = 0;
  std::optional<double> precision;  // absent when never predicted in the window
  std::optional<double> recall;     // absent when never the true label in the window
  uint64_t support = 0;
};

// body of a `serving_metrics` message: one model of one gantry-serve, its
// counters since the process started (cumulative, so a lost report loses
// nothing but resolution), sent every report interval.
struct ServingMetricsMessage {
  std::string deployment;  // gantry-serve --name
  std::string model;       // the model's name in URLs
  std::string version;     // the version serving now ("3")
  double time = 0;         // unix seconds
  int64_t seq = 0;         // 1, 2, 3, ... per gantry-serve process
  uint64_t requests = 0;   // answered, ok or not
  uint64_t succeeded = 0;
  std::map<int64_t, uint64_t> errors_by_code;       // HTTP status -> n
  std::map<std::string, uint64_t> errors_by_kind;   // "wrong_shape" -> n
  ServingHistogram latency_seconds;
  ServingHistogram batch_size;
  uint64_t non_finite = 0;      // requests refused for NaN/Inf
  uint64_t wrong_shape = 0;
  uint64_t wrong_datatype = 0;
  uint64_t out_of_range_requests = 0;  // accepted requests with a value outside the profile's range
  uint64_t out_of_range_values = 0;
  std::optional<double> accuracy;      // live accuracy over the feedback window
  uint64_t window_outcomes = 0;        // labelled outcomes in that window
  uint64_t labels_matched = 0;         // feedback labels matched, ever
  std::vector<ServingClassStats> per_class;
  // The reporter's own counters (this process).
  uint64_t samples_sent = 0;      // sampled rows handed to the socket
  uint64_t samples_dropped = 0;   // sampled rows dropped (queue full, monitor away)
  uint64_t reports_dropped = 0;   // frames dropped (queue full, monitor away)
};

// body of a `serving_samples` message: sampled rows of requests one model
// version answered (the features in the space of the version's drift
// profile) and the predicted class of each row.
struct ServingSamplesMessage {
  std::string deployment;
  std::string model;
  std::string version;
  double time = 0;
  int64_t row_size = 0;
  std::vector<float> inputs;         // rows x row_size, row-major
  std::vector<int64_t> predictions;  // one per row
  size_t rows() const { return predictions.size(); }
};

// Bounds on one serving message, so a single frame cannot blow up the monitor.
inline constexpr size_t kMaxServingClasses = 1024;
inline constexpr size_t kMaxServingBuckets = 256;
inline constexpr size_t kMaxServingErrorKinds = 64;
inline constexpr int64_t kMaxServingRowSize = 1 << 20;

std::string EncodeMetricsMessage(const MetricsMessage& m);
std::string EncodeJobStateMessage(const JobStateMessage& m);
std::string EncodeIngestAck(const IngestAck& a);
// invalid_argument for anything but a well-formed `ingest_ack` frame.
Result<IngestAck> DecodeIngestAck(std::string_view frame);
std::string EncodeServingMetricsMessage(const ServingMetricsMessage& m);
std::string EncodeServingSamplesMessage(const ServingSamplesMessage& m);
// The bodies of the two serving messages; invalid_argument naming the field
// for anything malformed (never throws).
Result<ServingMetricsMessage> DecodeServingMetricsBody(const json& body);
Result<ServingSamplesMessage> DecodeServingSamplesBody(const json& body);

}  // namespace gantry
