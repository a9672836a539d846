// A minimal blocking HTTP/1.1 GET for the CLI's look at gantry-serve
// endpoints (`gantry deployments`: health, model metadata, statistics). One
// connection per call, "Connection: close", bounded by `timeout` overall, so
// a hung server costs the CLI at most that long.
//
// Thread safety: pure function.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace gantry::cli {

struct HttpReply {
  int status = 0;
  std::string body;
};

// GET http://host:port/path. unavailable when nothing answers (refused,
// timed out, not HTTP).
Result<HttpReply> HttpGet(const std::string& host, int port, const std::string& path,
                          std::chrono::milliseconds timeout);

}  // namespace gantry::cli
