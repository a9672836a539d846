// Registration of the CLI's command groups. Each Add* function adds its
// subcommands to `app`; the chosen one stores its work in `action`.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/context.h"

namespace gantry::cli {

void AddClusterCommands(CLI::App& app, Context& ctx, Action& action);  // up, down, status
void AddJobCommands(CLI::App& app, Context& ctx, Action& action);      // submit, jobs, job, cancel, logs, wait
void AddWatchCommand(CLI::App& app, Context& ctx, Action& action);     // watch
void AddCkptCommands(CLI::App& app, Context& ctx, Action& action);     // ckpt ...
void AddAlertsCommand(CLI::App& app, Context& ctx, Action& action);    // alerts
void AddDriftCommands(CLI::App& app, Context& ctx, Action& action);    // drift compare, drift check (gantry-drift)
void AddDeployCommands(CLI::App& app, Context& ctx, Action& action);   // deploy, deployments, undeploy
void AddScheduleCommands(CLI::App& app, Context& ctx, Action& action); // schedule ...
void AddKeysCommand(CLI::App& app, Context& ctx, Action& action);      // keygen

}  // namespace gantry::cli
