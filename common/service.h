// What every Gantry daemon does around its RpcServer, in one place:
//   1. answers "ping" ({service, pid, version, endpoints, max_message_bytes})
//      and "shutdown"; max_message_bytes is the API socket's real frame
//      limit, which clients check before sending a large request;
//   2. publishes <data>/run/<name>.json once its sockets are bound, so the CLI
//      and `gantry up` find it (with max_message_bytes too), and removes the
//      file when it exits;
//   3. stops cleanly on SIGINT/SIGTERM (via a SignalFd created first thing in
//      main(), before any thread exists) or after replying to "shutdown".
#pragma once

#include "common/data_dir.h"
#include "common/rpc.h"
#include "common/signal_fd.h"

namespace gantry {

inline constexpr const char* kVersion = "0.1.0";

// Registers ping/shutdown, writes the run file, serves until stopped.
// `info.endpoints` must already hold the bound endpoints.
Status RunService(RpcServer& server, SignalFd& signals, const DataDir& dir, const ServiceInfo& info);

}  // namespace gantry
