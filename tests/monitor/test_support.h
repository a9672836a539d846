// The shared test helpers (tests/support) plus ingest frame builders.
#pragma once

#include "common/protocol.h"
#include "tests/support/test_support.h"

namespace gantry::monitor::testing {
using namespace gantry::testing;  // NOLINT: TempDir, WaitFor, BinDir

// One ingest frame: ToMsgpack({v: 1, type, id, body}).
inline std::string Frame(const std::string& type, const json& body) {
  return ToMsgpack({{"v", 1}, {"type", type}, {"id", "t"}, {"body", body}});
}

inline json MetricsBody(const std::string& job, int64_t step, json values, int64_t rank = 0) {
  return {{"job_id", job}, {"attempt", 1}, {"rank", rank}, {"world_size", 2}, {"step", step},
          {"total_steps", 100}, {"epoch", step / 10}, {"time", 1.7e9 + static_cast<double>(step)},
          {"values", std::move(values)}};
}

}  // namespace gantry::monitor::testing
