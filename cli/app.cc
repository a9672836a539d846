#include "cli/app.h"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>

#include "cli/commands.h"
#include "common/service.h"

namespace gantry::cli {

namespace {

// `gantry drift ...` in the program without the drift commands: exec the
// one with them, found next to this executable (as `gantry up` finds the
// daemons). Returns only on failure.
int ExecDrift(const std::vector<std::string>& args) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string program = (self.parent_path() / "gantry-drift").string();
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  if (!argv.empty() && argv[0] != nullptr) argv[0] = const_cast<char*>(program.c_str());
  ::execv(program.c_str(), argv.data());
  std::fprintf(stderr, "gantry: drift: cannot run %s: %s (it is built and installed with gantry: "
                       "cmake --build build --target gantry-drift)\n",
               program.c_str(), std::strerror(errno));
  return 1;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, DriftCommands drift) {
  try {
    CLI::App app{"gantry: distributed training and monitoring on your cluster"};
    app.set_version_flag("--version", std::string("gantry ") + gantry::kVersion);
    app.require_subcommand(1);
    Context ctx;
    Action action;
    app.add_option("--data-dir", ctx.data_dir_flag,
                   "Cluster data directory (default: $GANTRY_DATA_DIR, else ./.gantry)")
        ->envname("GANTRY_DATA_DIR");
    app.add_option("--keys", ctx.keys_flag,
                   "CURVE keys (server.pub and client.key) for a cluster with auth: curve (default: $GANTRY_KEYS, "
                   "else <data>/keys when the cluster uses CURVE)");
    AddClusterCommands(app, ctx, action);
    AddJobCommands(app, ctx, action);
    AddWatchCommand(app, ctx, action);
    AddCkptCommands(app, ctx, action);
    AddAlertsCommand(app, ctx, action);
    if (drift != nullptr) {
      drift(app, ctx, action);
    } else {
      auto* cmd = app.add_subcommand("drift", "Data drift between datasets, or against a checkpoint's reference "
                                              "profile (runs gantry-drift)");
      cmd->prefix_command();
      cmd->callback([&action, &args] { action = [&args] { return ExecDrift(args); }; });
    }
    AddDeployCommands(app, ctx, action);
    AddScheduleCommands(app, ctx, action);
    AddKeysCommand(app, ctx, action);
    std::vector<std::string> rest(args.rbegin(), args.rend());  // CLI11 takes them reversed
    if (!rest.empty()) rest.pop_back();                        // the program name
    try {
      app.parse(rest);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    return action ? action() : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gantry: %s\n", e.what());
    return 1;
  }
}

}  // namespace gantry::cli
