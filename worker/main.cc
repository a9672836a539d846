// gantry-worker: one data-parallel rank of a training job. mpirun (or srun)
// starts one per rank; see worker/cli_options.h for the command line and
// worker/trainer.h for what a rank does. Exit codes: 0 success, 2 bad spec,
// arguments or data, 75 preempted (SIGTERM/SIGUSR1: all ranks checkpointed
// and stopped), 1 any other failure. After MPI has started, a failing rank
// calls MPI_Abort so that its peers do not wait forever in a collective.
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <torch/torch.h>
#include <csignal>
#include <cstdlib>

#include <zmq.hpp>

#include "common/clock.h"
#include "common/curve.h"
#include "common/exit_codes.h"
#include "common/fs.h"
#include "common/log.h"
#include "worker/blas_info.h"
#include "worker/checkpoint_client.h"
#include "worker/cli_options.h"
#include "worker/heartbeat.h"
#include "data/dataset.h"
#include "worker/metrics_publisher.h"
#include "worker/mpi_communicator.h"
#if defined(GANTRY_WITH_NCCL)
#include "worker/nccl_communicator.h"
#endif
#include "worker/stop_signal.h"
#include "worker/trainer.h"

namespace {

using namespace gantry;
using namespace gantry::worker;

int Fail(const Status& st, const char* what) {
  spdlog::error("{}: {}", what, st.ToString());
  return ExitCodeFor(st);
}

// BLAS threads follow train.threads like LibTorch's own (an OpenBLAS
// pthread pool is sized per core when the library loads, and 2 ranks on 2
// cores would each start 2); then names the BLAS, warning about the slow one.
void LogBlas(int threads) {
  BlasInfo blas = DetectBlas();
  if (SetBlasThreads(blas, threads)) blas = DetectBlas();
  if (blas.kind == BlasKind::kReference) {
    spdlog::warn("BLAS: {}: matrix products run 10-20x slower than with OpenBLAS; install "
                 "libopenblas0-openmp and select it (scripts/lib.sh does: update-alternatives --set "
                 "libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3), "
                 "see docs/worker.md", DescribeBlas(blas));
  } else {
    spdlog::info("BLAS: {}", DescribeBlas(blas));
  }
}

int Run(int argc, char** argv) {
  ParsedArgs args = ParseArgs(argc, argv);
  if (!args.options) return args.exit_code;
  const WorkerOptions& opt = *args.options;

  // Before MPI_Init, so that MPI's own messages land in the rank's file too.
  // A rank must not outlive its launcher: if mpirun is killed (cancel after
  // the grace period, a crashed coordinator's cleanup), the kernel ends us.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
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
  // The cluster's client keys when it runs with CURVE: $GANTRY_KEYS, set by
  // the coordinator (common/curve.h). Before any socket exists.
  if (Status st = SetUpClientCurve(""); !st.ok()) return Fail(st, "CURVE keys ($GANTRY_KEYS)");
  torch::set_num_threads(spec->train.threads);
  LogBlas(spec->train.threads);

  // Data is rank-independent; reading it before MPI_Init means a bad file
  // ends the rank before any peer can block on it (mpirun ends the job).
  const DataSpec& d = spec->data;
  SystemClock clock;
  const auto load_start = clock.Now();
  auto data = gantry::data::LoadData(*spec);
  if (!data.ok()) return Fail(data.status(), "bad data (data.*)");
  for (const auto& note : data->notes) spdlog::warn("data: {}", note);
  spdlog::info("loaded {} training and {} test samples ({} classes) from {} in {:.1f} s; fingerprint {}",
               data->train.size(), data->test.size(), data->train.num_classes, d.path,
               std::chrono::duration<double>(clock.Now() - load_start).count(), data->fingerprint);

  // Rank 0 saves, with each version, the drift profile of its training set
  // (seconds of CPU): started now, it overlaps MPI's start-up, which waits
  // for the slowest rank's data load, instead of running after it.
  std::shared_future<torch::Tensor> drift_profile;
  if (env_rank == 0 && !opt.storage.empty()) drift_profile = StartDriftProfileThread(data->train, clock);

  // Before MPI starts, so a stop request during start-up is not lost; the
  // loop polls it from its first step.
  auto stop = StopSignal::Install();
  if (!stop.ok()) return Fail(stop.status(), "installing signal handlers");

  // A rank waiting in a collective yields the core instead of spinning
  // through its whole time slice: when the kernel puts both ranks of a job
  // on one core (other work on the host), a spinning rank made its peer
  // wait ~20 ms per allreduce, 12x slower steps (docs/performance.md). The
  // launcher's or user's own setting wins.
  ::setenv("OMPI_MCA_mpi_yield_when_idle", "1", /*overwrite=*/0);
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

  // The trainer's communicator. CPU jobs: MPI. CUDA jobs: NCCL for CUDA
  // tensors (gradients, parameters), bootstrapped over MPI, which keeps
  // carrying the trainer's small CPU collectives (ByDeviceCommunicator).
  // Declared after `comm` so that NCCL is torn down before MPI.
  Communicator* train_comm = comm->get();
  std::unique_ptr<Communicator> by_device;
  std::string device = spec->resources.device;
  if (device == "cuda") {
#if defined(GANTRY_WITH_NCCL)
    auto nccl = NcclCommunicator::Create(**comm);
    if (!nccl.ok()) return abort_on(nccl.status(), "starting NCCL");
    // The trainer puts the model and batches on this rank's own GPU.
    device = "cuda:" + std::to_string((*nccl)->device());
    spdlog::info("rank {}/{}: NCCL communicator on {}", mpi.world_rank(), mpi.world_size(), device);
    by_device = std::make_unique<ByDeviceCommunicator>(**comm, std::move(nccl).value());
    train_comm = by_device.get();
#else
    // LoadJobSpec refuses cuda in such a build; this is the backstop.
    return abort_on(Status::InvalidArgument("resources.device cuda: this gantry-worker was built without "
                                            "-DGANTRY_WITH_CUDA=ON -DGANTRY_WITH_NCCL=ON"),
                    "bad job spec");
#endif
  }

  bool preempted = false;
  {
    zmq::context_t zmq_ctx(1);
    const int rank = mpi.world_rank();
    // Every rank reports its own step time (stragglers show); rank 0 also
    // the job's loss and accuracy. Only rank 0 talks to storage.
    // Unacknowledged points spill to the attempt's folder (metrics_publisher.h).
    MetricsPublisherOptions metrics_options;
    metrics_options.spill_dir = opt.log_dir;
    MetricsPublisher metrics(zmq_ctx, opt.monitor, {opt.job_id, opt.attempt, rank, mpi.world_size()},
                             metrics_options);
    CheckpointClient checkpoints(zmq_ctx, rank == 0 ? opt.storage : "");
    const auto period = std::chrono::milliseconds(
        std::max<int64_t>(1, static_cast<int64_t>(spec->train.heartbeat_seconds * 1000)));
    HeartbeatSender heartbeat(zmq_ctx, opt.coordinator, {opt.job_id, opt.attempt, rank}, period, clock);
    TrainerOptions topt{*spec, opt.job_id, opt.attempt, stop->get(), &heartbeat, data->fingerprint, drift_profile};
    topt.spec.resources.device = device;
    Trainer trainer(std::move(topt), std::move(data->train), std::move(data->test), *train_comm, metrics,
                    checkpoints, clock);
    if (Status st = trainer.Run(); !st.ok()) return abort_on(st, "training failed");
    const TrainSummary& s = trainer.summary();
    preempted = s.preempted;
    auto shown = [](const std::optional<double>& v) { return v ? fmt::format("{:.4f}", *v) : std::string("-"); };
    spdlog::info("rank {}/{} {}: {} steps, loss {}, test accuracy {}", rank, mpi.world_size(),
                 preempted ? "preempted (checkpointed)" : "done", s.steps, shown(s.loss), shown(s.test_accuracy));
    // Leaving this scope stops the heartbeat and closes the sockets; the
    // context waits (bounded by the linger) for the last metrics.
  }
  if (preempted) return kExitPreempted;
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
