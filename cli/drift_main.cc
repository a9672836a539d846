// gantry-drift: `gantry drift ...` (cli/cmd_drift.cc). The gantry program
// execs this one for its drift commands, so that only they load LibTorch
// (through the data library that reads datasets).
#include "cli/app.h"
#include "cli/commands.h"
#include "common/log.h"

int main(int argc, char** argv) {
  gantry::InitLogging("gantry", "", "warn");
  return gantry::cli::RunCli(std::vector<std::string>(argv, argv + argc), &gantry::cli::AddDriftCommands);
}
