// Shared by `gantry up`, `gantry supervise` and `gantry status`: the options
// of the embedded cluster and the supervisor's published state.
//
// The supervisor (cli/supervise.cc) is the process that starts the three
// services and restarts one that dies (policy: cli/supervisor.h). It
// publishes its state in <data>/run/supervisor.json (written atomically on
// every change; removed when it exits):
//   {"pid": N, "foreground": bool, "updated": unix_s,
//    "services": {"<name>": {"state": "running|restarting|stopped|crash-loop|pending",
//                            "pid": N, "restarts": N, "last_exit": "killed by signal 9 (Killed)",
//                            "last_exit_time": unix_s, "last_error": "...",
//                            "next_restart_in_s": s}}}
#pragma once

#include <optional>
#include <string>
#include <thread>

#include "cli/context.h"
#include "common/data_dir.h"

namespace gantry::cli {

struct UpOptions {
  bool detach = false;
  int slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int port_base = kCoordinatorPort;
  std::string host = "127.0.0.1";
  double stop_grace = 10;
  double start_timeout = 30;
  // Cluster config (configs/cluster.yaml), absolute; handed to the
  // coordinator (its hosts' CPU/GPU slots and scheduler policy). With a
  // config, --slots is passed on only when given (`slots_given`).
  std::string config;
  bool slots_given = false;
  // With a config, the services bind the config's addresses (coordinator.
  // bind, storage.bind, monitor.*) unless --port-base was given.
  bool ports_given = false;
};

// Runs the supervisor in this process until stopped. `foreground` (plain
// `gantry up`): SIGINT/SIGTERM stop the services too. Otherwise (`gantry
// supervise`, started by `gantry up --detach`): SIGTERM ends supervision and
// leaves the services running (`gantry down` then stops them in order).
// SIGHUP: start whatever is not running, including crash-looped services.
int Supervise(Context& ctx, const UpOptions& o, bool foreground);

std::string SupervisorFile(const DataDir& dir);
// The published state with "alive" added (the supervisor's pid exists), or
// nullopt when there is no (readable) state file.
std::optional<json> ReadSupervisorState(const DataDir& dir);
// The last lines of a file, indented, to explain why a process died.
std::string Tail(const std::string& path, size_t max_lines = 12);

}  // namespace gantry::cli
