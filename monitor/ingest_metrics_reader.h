// ReadMetricsFrame: the fast path of ParseIngestFrame for the common frame,
// a `metrics` message as the worker sends it, read straight from the
// MessagePack bytes into a MetricsPoint without building a json tree.
//
// It accepts only what the generic path (ParseMsgpack + ParseMetrics) would
// accept with the same result: envelope keys v, type, id, body and body keys
// job_id, attempt, rank, world_size, step, total_steps, epoch, time, values,
// seq, each at most once, with the types and ranges ParseMetrics checks.
// Anything else (another type, an unknown or repeated key, a nil, an integer
// beyond int64, a bad value) returns false, and the caller runs the generic
// path, which then gives the same answer or the same error as always.
//
// Values come out sorted by name (a json map's order, as the generic path
// gives them). `body` is the byte range of the body map inside `frame`.
//
// Thread safety: a pure function.
#pragma once

#include <string_view>

#include "monitor/ingest_message.h"

namespace gantry::monitor {

bool ReadMetricsFrame(std::string_view frame, MetricsPoint& point, std::string_view& body);

}  // namespace gantry::monitor
