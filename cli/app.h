// The whole `gantry` command line as a function, so tests run it in process.
#pragma once

#include <string>
#include <vector>

namespace gantry::cli {

// Parses `args` (args[0] is the program name), runs the chosen command and
// returns its exit code. Usage errors print CLI11's message and return its
// code (non-zero); anything a command throws (a reply of an unexpected shape,
// a library error) is caught and printed as "gantry: <what>" with exit 1.
int RunCli(const std::vector<std::string>& args);

}  // namespace gantry::cli
