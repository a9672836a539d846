// gantry-worker: one data-parallel rank of a training job. mpirun (or srun)
// starts one per rank; see worker/cli_options.h for the command line and
// worker/trainer.h for what a rank does. Exit codes: 0 success, 2 bad spec,
// arguments or data, 1 any other failure. After MPI has started, a failing
// rank calls MPI_Abort so that its peers do not wait forever in a collective.
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <zmq.hpp>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "worker/checkpoint_client.h"
#include "worker/cli_options.h"
#include "worker/idx_reader.h"
#include "worker/metrics_publisher.h"
#include "worker/mpi_communicator.h"
#include "worker/trainer.h"

namespace {

using namespace gantry;
using namespace gantry::worker;

int Fail(const Status& st, const char* what) {
  spdlog::error("{}: {}", what, st.ToString());
  return ExitCodeFor(st);
}

int Run(int argc, char** argv) {
  ParsedArgs args = ParseArgs(argc, argv);
  if (!args.options) return args.exit_code;
  const WorkerOptions& opt = *args.options;

  // Before MPI_Init, so that MPI's own messages land in the rank's file too.
  const int env_rank = RankFromEnv();
  if (!opt.log_dir.empty()) {
    if (Status st = RedirectOutput(opt.log_dir, env_rank); !st.ok()) {
      std::fprintf(stderr, "gantry-worker: %s\n", st.ToString().c_str());
      return ExitCodeFor(st);
    }
  }
  InitLogging("worker", "", opt.log_level);
  spdlog::info("gantry-worker starting: job {} attempt {} rank {} (from the launcher) spec {}",
               opt.job_id, opt.attempt, env_rank, opt.spec_path);

  auto spec = LoadJobSpec(opt.spec_path);
  if (!spec.ok()) return Fail(spec.status(), "bad job spec");
  torch::set_num_threads(spec->train.threads);

  // Data is rank-independent; reading it before MPI_Init means a bad file
  // ends the rank before any peer can block on it (mpirun ends the job).
  const DataSpec& d = spec->data;
  SystemClock clock;
  const auto load_start = clock.Now();
  auto train = LoadIdxDataset(AbsolutePath(d.train_images, d.path),
                              AbsolutePath(d.train_labels, d.path), d.limit);
  if (!train.ok()) return Fail(train.status(), "bad training data (data.train_images/train_labels)");
  auto test = LoadIdxDataset(AbsolutePath(d.test_images, d.path), AbsolutePath(d.test_labels, d.path));
  if (!test.ok()) return Fail(test.status(), "bad test data (data.test_images/test_labels)");
  spdlog::info("loaded {} training and {} test samples from {} in {:.1f} s", train->size(),
               test->size(), d.path,
               std::chrono::duration<double>(clock.Now() - load_start).count());

  auto session = MpiSession::Create(&argc, &argv);
  if (!session.ok()) return Fail(session.status(), "starting MPI");
  MpiSession& mpi = **session;
  auto abort_on = [&](const Status& st, const char* what) -> int {
    int code = Fail(st, what);
    if (mpi.world_size() > 1) mpi.Abort(code);
    return code;
  };
  auto comm = MpiCommunicator::Create(mpi);
  if (!comm.ok()) return abort_on(comm.status(), "creating MPI communicator");
  if (mpi.world_size() != spec->resources.workers) {
    spdlog::warn("running {} ranks but the spec asks for resources.workers {}", mpi.world_size(),
                 spec->resources.workers);
  }

  {
    zmq::context_t zmq_ctx(1);
    const bool reporter = mpi.world_rank() == 0;
    MetricsPublisher metrics(zmq_ctx, reporter ? opt.monitor : "",
                             {opt.job_id, opt.attempt, mpi.world_rank(), mpi.world_size()});
    CheckpointClient checkpoints(zmq_ctx, reporter ? opt.storage : "");
    Trainer trainer({*spec, opt.job_id, opt.attempt}, std::move(train).value(),
                    std::move(test).value(), **comm, metrics, checkpoints, clock);
    if (Status st = trainer.Run(); !st.ok()) return abort_on(st, "training failed");
    const TrainSummary& s = trainer.summary();
    spdlog::info("rank {}/{} done: {} steps, loss {:.4f}, test accuracy {:.4f}", mpi.world_rank(),
                 mpi.world_size(), s.steps, s.loss, s.test_accuracy.value_or(0.0));
    // Leaving this scope closes the sockets; the context waits (bounded by
    // the linger) for the last metrics to reach the monitor.
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
