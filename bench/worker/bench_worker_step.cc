// Single-process figures: (1) step-time overhead of gantry's Trainer (1
// rank) vs a plain LibTorch loop with the same model, batch, data order and
// thread count; (2) training stall per asynchronous checkpoint vs a
// synchronous save of the same state, against an in-process store that
// encodes the request and writes + fdatasyncs it (what the storage service
// does with it, minus the socket). Rounds alternate the sides.
//   bench_worker_step [steps=200] [rounds=5]
#include <fcntl.h>
#include <unistd.h>
#include <torch/torch.h>

#include "bench/worker/bench_util.h"
#include "data/idx_reader.h"
#include "model/models.h"
#include "worker/sampler.h"
#include "worker/trainer.h"

using namespace gantry;
using namespace gantry::worker;
using namespace gantry::worker::bench;
using gantry::data::Dataset;
using gantry::data::kNumClasses;

namespace {

class LocalComm final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  Status AllreduceSum(torch::Tensor&) override { return Status::Ok(); }
  Status Broadcast(torch::Tensor&, int) override { return Status::Ok(); }
};

class FileStore final : public CheckpointStore {
 public:
  bool enabled() const override { return true; }
  // Writes the checkpoint's msgpack encoding (the save_checkpoint body plus
  // version): the encoding runs on the saving thread, as CheckpointClient's.
  Result<SavedCheckpoint> Save(const Checkpoint& checkpoint) override {
    GANTRY_ASSIGN_OR_RETURN(std::string bytes, EncodeCheckpoint(checkpoint));
    int fd = ::open("/tmp/gantry-bench-ckpt.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return Status::Internal("open");
    (void)!::write(fd, bytes.data(), bytes.size());
    ::fdatasync(fd);
    ::close(fd);
    return SavedCheckpoint{"m", ++n_};
  }
  Result<std::optional<Checkpoint>> LoadLatestOfJob(const std::string&, const std::string&) override {
    return std::optional<Checkpoint>();
  }
  Result<Checkpoint> LoadRef(const std::string&, const std::string&, bool) override {
    return Status::NotFound("-");
  }

 private:
  int64_t n_ = 0;
};

Dataset Synthetic(int64_t n) {
  torch::manual_seed(5);
  return {torch::randn({n, 1, 28, 28}), torch::randint(0, 10, {n})};
}

JobSpec Spec(int64_t steps, std::vector<int64_t> hidden) {
  JobSpec s;
  s.name = "bench";
  s.model.hidden = std::move(hidden);
  s.train.steps = steps;
  s.train.batch_size = 64;
  s.train.log_every = steps;
  s.checkpoint.model = "bench";
  return s;
}

// The loop a user would write: same model, optimizer, batches and threads.
double PlainLoop(const JobSpec& spec, const Dataset& train) {
  torch::manual_seed(spec.train.seed);
  auto model = std::move(gantry::model::BuildSequential(spec.model, {1, 28, 28}, kNumClasses)).value();
  auto opt = std::move(BuildOptimizer(spec.train.optimizer, model->parameters())).value();
  auto sampler = std::move(DistributedSampler::Create(train.size(), spec.train.batch_size, 0, 1, spec.train.seed)).value();
  const double t0 = Now();
  for (int64_t s = 0; s < spec.train.steps; ++s) {
    auto v = sampler.Batch(s / sampler.steps_per_epoch(), s % sampler.steps_per_epoch());
    torch::Tensor idx = torch::tensor(torch::ArrayRef<int64_t>(v), torch::kInt64);
    torch::Tensor x = train.images.index_select(0, idx);
    torch::Tensor y = train.labels.index_select(0, idx);
    opt->zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    opt->step();
  }
  return (Now() - t0) / static_cast<double>(spec.train.steps);
}

double GantryLoop(const JobSpec& spec, const Dataset& train, const Dataset& test, CheckpointStore& store,
                  TrainSummary* summary) {
  LocalComm comm;
  zmq::context_t ctx(1);
  MetricsPublisher metrics(ctx, "", {"b", 1, 0, 1});
  SystemClock clock;
  Trainer trainer({spec, "b", 1, nullptr, nullptr, "fp", {}}, {train.images, train.labels, kNumClasses},
                  {test.images, test.labels, kNumClasses}, comm, metrics, store, clock);
  const double t0 = Now();
  if (Status st = trainer.Run(); !st.ok()) std::fprintf(stderr, "%s\n", st.ToString().c_str());
  if (summary != nullptr) *summary = trainer.summary();
  return (Now() - t0) / static_cast<double>(spec.train.steps);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t steps = argc > 1 ? std::atoll(argv[1]) : 200;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  torch::set_num_threads(1);
  Dataset train = Synthetic(20000);
  Dataset test = Synthetic(100);  // the trainer evaluates once at the end
  zmq::context_t ctx(1);
  CheckpointClient none(ctx, "");

  JobSpec spec = Spec(steps, {256, 128});
  (void)PlainLoop(spec, train);
  std::vector<double> plain, gantry;
  for (int r = 0; r < rounds; ++r) {
    plain.push_back(PlainLoop(spec, train));
    gantry.push_back(GantryLoop(spec, train, test, none, nullptr));
  }
  Spread g = Summarise(gantry), p = Summarise(plain);
  Emit("worker_step", "step_overhead_vs_plain_libtorch", g.median / p.median - 1, "fraction", gantry.size(), g, p,
       "seconds per step, MLP 784-256-128-10, batch 64, 1 thread, 1 rank; trainer includes startup and final eval");

  // Checkpoint stall: 0.67M-parameter MLP + SGD momentum (~5.4 MB per save).
  JobSpec ck = Spec(60, {512, 512});
  ck.checkpoint.every_steps = 10;
  std::vector<double> async_stall, sync_stall;
  for (int r = 0; r < rounds; ++r) {
    for (bool async : {true, false}) {
      ck.checkpoint.async = async;
      FileStore store;
      TrainSummary s;
      (void)GantryLoop(ck, train, test, store, &s);
      // Periodic saves only: the final save is synchronous in both modes.
      const double per_save = s.checkpoint_stall_seconds / static_cast<double>(s.checkpoints_saved - 1);
      (async ? async_stall : sync_stall).push_back(per_save);
    }
  }
  Spread a = Summarise(async_stall), sy = Summarise(sync_stall);
  Emit("worker_step", "checkpoint_stall_async_vs_sync", a.median / sy.median, "x", async_stall.size(), a, sy,
       "seconds of training stalled per periodic save (5 per run, ~5.4 MB each, written + fdatasync)");
  return 0;
}
