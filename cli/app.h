// The whole `gantry` command line as a function, so tests run it in process.
#pragma once

#include <string>
#include <vector>

#include "cli/context.h"

namespace CLI {
class App;
}

namespace gantry::cli {

// Adds `gantry drift` (cmd_drift.cc). Only gantry-drift links it: the drift
// commands read datasets through LibTorch, whose loading costs every other
// command about a second (docs/performance.md, "CLI start-up").
using DriftCommands = void (*)(CLI::App& app, Context& ctx, Action& action);

// Parses `args` (args[0] is the program name), runs the chosen command and
// returns its exit code. Usage errors print CLI11's message and return its
// code (non-zero); anything a command throws (a reply of an unexpected shape,
// a library error) is caught and printed as "gantry: <what>" with exit 1.
// Without `drift`, `gantry drift ...` replaces this process with the
// gantry-drift program next to it (same arguments).
int RunCli(const std::vector<std::string>& args, DriftCommands drift = nullptr);

}  // namespace gantry::cli
