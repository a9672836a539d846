#include <unistd.h>

#include "coordinator/launcher.h"
#include "coordinator/mpi_launch.h"

namespace gantry::coordinator {

// Rank r (OMPI_COMM_WORLD_RANK) takes field r+1 of $GANTRY_RANK_GPUS
// ("0;1;2,3") as its CUDA_VISIBLE_DEVICES, then becomes the worker.
const char* const kRankDevicesScript =
    "i=$((${OMPI_COMM_WORLD_RANK:-0}+1)); "
    "CUDA_VISIBLE_DEVICES=$(printf '%s' \"$GANTRY_RANK_GPUS\" | cut -d';' -f\"$i\"); "
    "export CUDA_VISIBLE_DEVICES; exec \"$@\"";

std::vector<std::string> LocalMpiLauncher::CommandLine(const LaunchRequest& r) const {
  std::vector<std::string> argv = {options_.mpirun, "-np", std::to_string(r.workers),
                                   "--oversubscribe", "--bind-to", "none"};
  if (::geteuid() == 0) argv.push_back("--allow-run-as-root");
  for (const auto& a : options_.extra_args) argv.push_back(a);
  AppendWorkerCommand(argv, options_.worker_binary, r);
  return argv;
}

Result<std::unique_ptr<Launch>> LocalMpiLauncher::Start(const LaunchRequest& r) {
  return SpawnWrapped(CommandLine(r), r.log_dir, "launcher.log", MpirunEnv(r.threads_per_worker));
}

Result<std::unique_ptr<Launch>> LocalMpiLauncher::StartProcess(const ProcessRequest& r) {
  if (r.argv.empty()) return Status::InvalidArgument("StartProcess: empty command line");
  return SpawnWrapped(r.argv, r.log_dir, r.log_name, r.env);
}

Result<std::unique_ptr<Launch>> LocalMpiLauncher::Adopt(const AdoptRequest& r) { return AdoptWrapped(r); }

}  // namespace gantry::coordinator
