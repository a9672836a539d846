// `slurm` launcher: each attempt is one Slurm batch job; Slurm owns the
// allocation, Gantry never picks nodes (DESIGN.md, "Launchers").
//
// 1. Start() writes <log_dir>/slurm-batch.sh and submits it with
//    `sbatch --parsable --job-name=gantry-<job>-a<attempt> --ntasks=<workers>
//    --cpus-per-task=<threads> --no-requeue --output=<log_dir>/launcher.log
//    [--partition] [--account] [--time]` (sbatch runs synchronously, bounded
//    by command_timeout: it is one request to slurmctld). The script runs the
//    ranks as one step, `srun --mpi=pmix --kill-on-bad-exit=1 <srun_args>
//    gantry-worker …`, with the environment the local launcher gives them,
//    and records srun's exit status in <log_dir>/exit_status like the local
//    launcher's wrapper (for a coordinator that restarts after the job ended
//    and Slurm has forgotten it). The Slurm job id goes to
//    <log_dir>/slurm_job_id and is the attempt's pid() in the job store.
// 2. Poll() never blocks: at most every poll_interval it starts
//    `scontrol show job -o <id>` in the background and reads its answer on a
//    later Poll (a query that outlives command_timeout is killed). State
//    changes (PENDING with its reason, RUNNING on which nodes) are appended
//    to launcher.log, so `gantry logs --launcher` shows them.
// 3. The final JobState/ExitCode map onto ExitInfo (SlurmJobExit below):
//    COMPLETED → exit 0; FAILED → its exit code or signal; CANCELLED →
//    failure class "cancelled"; TIMEOUT/DEADLINE → "time_limit"; NODE_FAIL/
//    BOOT_FAIL → "node_lost"; PREEMPTED → exit kExitPreempted ("preempted",
//    the job is requeued); OUT_OF_MEMORY → "out_of_memory".
// 4. RequestStop → `scancel <id>`; RequestPreempt → `scancel --signal=TERM
//    <id>` (the step's ranks agree on a step, checkpoint and exit with
//    kExitPreempted; a job still PENDING is cancelled instead and reported
//    as preempted); Kill → `scancel --full --signal=KILL <id>` then
//    `scancel <id>`. Stop and preempt run in the background; Kill waits
//    (bounded by command_timeout).
// 5. Adopt() (a restarted coordinator): the job id from the attempt's
//    record (pid), else <log_dir>/slurm_job_id, else `squeue --name`; the
//    job's name must be this attempt's, so a reused id is never adopted.
//
// The data directory (spec, logs, exit files) must be on a filesystem the
// compute nodes share with the coordinator's host. StartProcess (a
// deployment's gantry-serve) is refused: deployments run on the
// coordinator's host through the local launcher (coordinator/main.cc).
//
// Thread safety: like every launcher, used from the coordinator's loop only.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "coordinator/launcher.h"

namespace gantry::coordinator {

struct SlurmOptions {
  std::string sbatch = "sbatch";
  std::string scontrol = "scontrol";
  std::string scancel = "scancel";
  std::string squeue = "squeue";
  std::string worker_binary;  // absolute path of gantry-worker (on every node)
  std::string partition;      // sbatch --partition (cluster config launcher.partition)
  std::string account;        // sbatch --account
  std::vector<std::string> srun_args;  // extra srun arguments (launcher.srun_args)
  // How often a running attempt asks slurmctld for its state. Shorter sees
  // ends sooner (a finished job's slots are freed in Gantry up to this late)
  // at one `scontrol` process per running attempt per interval.
  std::chrono::milliseconds poll_interval{1000};
  // Longest a Slurm command may take before it is killed (slurmctld down or
  // overloaded): sbatch fails the launch, a poll is retried next interval.
  std::chrono::milliseconds command_timeout{10000};
};

// One job as `scontrol show job -o <id>` describes it.
struct SlurmJobInfo {
  std::string id;
  std::string name;
  std::string state;   // JobState: PENDING, RUNNING, COMPLETED, FAILED, …
  std::string reason;  // Reason: why it pends or how it ended ("None" if none)
  int exit_code = 0;   // ExitCode=<exit_code>:<signal>
  int signal = 0;
  std::string nodes;   // NodeList
  std::string time_limit;
};

// Parses scontrol's one-line answer. not_found when Slurm does not know the
// job ("Invalid job id specified": never submitted, or forgotten after
// MinJobAge); invalid_argument naming what is missing for other output.
Result<SlurmJobInfo> ParseScontrolJob(std::string_view text);

// How the attempt ended, once the Slurm job is over; nullopt while it is
// queued, running or completing. Exit codes above 128 are srun's "task
// killed by signal code-128" (the local launcher's convention too).
std::optional<ExitInfo> SlurmJobExit(const SlurmJobInfo& job);

// "gantry-<job>-a<attempt>": the Slurm job name of an attempt.
std::string SlurmJobName(const std::string& job_id, int attempt);

class SlurmLauncher final : public Launcher {
 public:
  // `clock` paces polls and times out queries (tests advance a ManualClock).
  SlurmLauncher(SlurmOptions options, const Clock& clock) : options_(std::move(options)), clock_(clock) {}
  Result<std::unique_ptr<Launch>> Start(const LaunchRequest& request) override;
  Result<std::unique_ptr<Launch>> StartProcess(const ProcessRequest& request) override;
  Result<std::unique_ptr<Launch>> Adopt(const AdoptRequest& request) override;

  // What Start submits; public so tests and docs can show them.
  std::string BatchScript(const LaunchRequest& request) const;
  std::vector<std::string> SbatchCommand(const LaunchRequest& request, const std::string& script_path) const;

 private:
  SlurmOptions options_;
  const Clock& clock_;
};

}  // namespace gantry::coordinator
