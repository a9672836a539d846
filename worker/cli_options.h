// Command line and process setup of gantry-worker, before MPI starts.
//
//   gantry-worker --job-id ID --attempt N --spec FILE --storage EP --monitor EP
//                 [--coordinator EP] [--log-dir DIR] [--log-level info]
//
// --storage / --monitor may be empty strings: no checkpoints are sent / no
// metrics are pushed. --coordinator (default empty = off) is the
// coordinator's API endpoint, where every rank sends heartbeats. --spec
// is JSON (as the coordinator writes it) or YAML.
//
// Thread safety: call from main() before any other thread exists (these
// functions read the environment and replace file descriptors 1 and 2).
#pragma once

#include <optional>
#include <string>

#include "common/exit_codes.h"
#include "common/job_spec.h"

namespace gantry::worker {

// Process exit codes (the coordinator classifies failures by them).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;  // spec, arguments or data
// Stopped by SIGTERM/SIGUSR1 after a checkpoint: gantry::kExitPreempted
// (common/exit_codes.h), shared with the coordinator.
using gantry::kExitPreempted;

struct WorkerOptions {
  std::string job_id;
  int attempt = 1;
  std::string spec_path;
  std::string storage;  // RpcServer endpoint of gantry-storage, or empty
  std::string monitor;  // PULL endpoint of gantry-monitor's ingest, or empty
  std::string coordinator;  // RpcServer endpoint of gantry-coordinator (heartbeats), or empty
  std::string log_dir;
  std::string log_level = "info";
};

// Parses argv. On --help or an error, prints to stdout/stderr and returns the
// exit code to use instead of options.
struct ParsedArgs {
  std::optional<WorkerOptions> options;
  int exit_code = kExitOk;
};
ParsedArgs ParseArgs(int argc, char** argv);

// This process's rank as the launcher tells it before MPI_Init
// (OMPI_COMM_WORLD_RANK, PMI_RANK, SLURM_PROCID), or 0.
int RankFromEnv();

// Appends stdout and stderr to <log_dir>/rank-<rank>.log (creating log_dir),
// so that every line a rank prints, ours or a library's, lands in its file.
Status RedirectOutput(const std::string& log_dir, int rank);

// Reads and validates the job spec; relative data paths resolve against the
// spec file's directory. Also refuses what this worker cannot run yet.
Result<JobSpec> LoadJobSpec(const std::string& path);

// kExitBadInput for invalid_argument, kExitFailure for any other error.
int ExitCodeFor(const Status& status);

}  // namespace gantry::worker
