#include "cli/app.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "common/service.h"

namespace gantry::cli {

int RunCli(const std::vector<std::string>& args) {
  try {
    CLI::App app{"gantry: distributed training and monitoring on your cluster"};
    app.set_version_flag("--version", std::string("gantry ") + gantry::kVersion);
    app.require_subcommand(1);
    Context ctx;
    Action action;
    app.add_option("--data-dir", ctx.data_dir_flag,
                   "Cluster data directory (default: $GANTRY_DATA_DIR, else ./.gantry)")
        ->envname("GANTRY_DATA_DIR");
    AddClusterCommands(app, ctx, action);
    AddJobCommands(app, ctx, action);
    AddWatchCommand(app, ctx, action);
    AddCkptCommands(app, ctx, action);
    AddAlertsCommand(app, ctx, action);
#if GANTRY_HAVE_DRIFT_CLI
    AddDriftCommands(app, ctx, action);
#endif
    AddDeployCommands(app, ctx, action);
    AddScheduleCommands(app, ctx, action);
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
