// gantry: the command-line interface. Speaks the wire protocol to the
// services of the cluster named by --data-dir / $GANTRY_DATA_DIR / ./.gantry.
#include "cli/app.h"
#include "common/log.h"

int main(int argc, char** argv) {
  gantry::InitLogging("gantry", "", "warn");
  return gantry::cli::RunCli(std::vector<std::string>(argv, argv + argc));
}
