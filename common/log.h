// Logging: spdlog, one logger per process, set up once in main().
// Services log to <data>/logs/<service>.log and stderr; the CLI logs only
// warnings to stderr so its stdout stays machine-readable.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace gantry {

// Configures the default spdlog logger. `file` may be empty (stderr only).
// `level` is one of trace, debug, info, warn, error.
void InitLogging(const std::string& name, const std::string& file, const std::string& level);

}  // namespace gantry
