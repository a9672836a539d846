// gantry: the command-line interface. Speaks the wire protocol to the
// services of the cluster named by --data-dir / $GANTRY_DATA_DIR / ./.gantry.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/log.h"
#include "common/service.h"

int main(int argc, char** argv) {
  using namespace gantry::cli;
  gantry::InitLogging("gantry", "", "warn");
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
  CLI11_PARSE(app, argc, argv);
  return action ? action() : 0;
}
