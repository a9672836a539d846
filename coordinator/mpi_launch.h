// What the mpirun launchers share (`local`: LocalMpiLauncher; `hosts`:
// HostsMpiLauncher): mpirun run under the exit-recording wrapper in a process
// group of its own, the re-adoption of such a group by a restarted
// coordinator, and the part of mpirun's command line that runs the worker.
//
// The wrapper (a small sh, the process group leader) runs "$@" and writes its
// exit status to <log_dir>/exit_status (kExitStatusFile) when it ends; it
// ignores the signals meant for mpirun (trap, not SIG_IGN, so mpirun and the
// ranks keep default dispositions). Poll/RequestStop/RequestPreempt/Kill of
// the returned Launch behave as LocalMpiLauncher's header describes.
//
// Thread safety: free functions; each Launch is used by one thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/glibc_tunables.h"
#include "coordinator/launcher.h"

namespace gantry::coordinator {

// Starts `argv` under the wrapper in a new session; its output (stdout and
// stderr) goes to <log_dir>/<log_name>. An exit file left by an earlier try
// of the same attempt is removed first.
Result<std::unique_ptr<Launch>> SpawnWrapped(const std::vector<std::string>& argv, const std::string& log_dir,
                                             const std::string& log_name, std::map<std::string, std::string> env);

// Re-attaches to a wrapped group started by an earlier coordinator (not our
// child: watched through its process group, ended by its exit file).
// not_found unless the group still runs this attempt under the wrapper
// (guards against pid reuse and launches from before the wrapper).
Result<std::unique_ptr<Launch>> AdoptWrapped(const AdoptRequest& request);

// The environment mpirun itself gets: the threads per rank and
// GLIBC_TUNABLES with kRankHugePages (both forwarded to the ranks with -x)
// and, as root, OpenMPI's consent to run as root.
std::map<std::string, std::string> MpirunEnv(int threads_per_worker);
// $GLIBC_TUNABLES plus kRankHugePages unless it already sets glibc.malloc.hugetlb.
std::string RankGlibcTunables();

// Appends what follows mpirun's own options: `-x OMP_NUM_THREADS -x
// MKL_NUM_THREADS`, for a cuda job the per-rank device wrapper
// (kRankDevicesScript), then `<worker> --job-id … --log-dir …`.
void AppendWorkerCommand(std::vector<std::string>& argv, const std::string& worker_binary,
                         const LaunchRequest& request);

}  // namespace gantry::coordinator
