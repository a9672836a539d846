// Training-step figures under mpirun (bench/worker_train.sh): overlap on vs
// off, the bucket-size sweep that chose Reducer::kDefaultBucketBytes, and
// the step time the wrapper turns into 2-rank vs 1-rank throughput.
// Model: MLP 784-512-512-10 (0.67 M parameters, 2.7 MB of gradients),
// batch 64 per rank, SGD, 1 LibTorch thread per rank, synthetic data.
//   mpirun -np W bench_worker_train [steps=10] [rounds=3]
#include <mpi.h>
#include <torch/torch.h>

#include <map>

#include "bench/worker/bench_util.h"
#include "data/idx_reader.h"
#include "model/models.h"
#include "worker/mpi_communicator.h"
#include "worker/optimizer.h"
#include "worker/reducer.h"

using namespace gantry;
using namespace gantry::worker;
using namespace gantry::worker::bench;

namespace {

struct Config {
  std::string name;
  int64_t bucket_bytes;
  bool overlap;
};

// Median-free mean step time of `steps` steps with this reducer config.
double StepSeconds(Communicator& comm, torch::nn::Sequential& model, torch::optim::Optimizer& opt,
                   const Config& c, int steps, const torch::Tensor& x, const torch::Tensor& y) {
  // bucket_bytes < 0: no reducer at all (each rank trains alone), the
  // ceiling that communication can only approach.
  std::unique_ptr<Reducer> reducer;
  if (c.bucket_bytes >= 0) {
    reducer = std::move(Reducer::Create(comm, model->parameters(), {c.bucket_bytes, c.overlap})).value();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = Now();
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    if (reducer) reducer->Prepare();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    if (reducer) (void)reducer->Finalize();
    opt.step();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return (Now() - t0) / steps;
}

}  // namespace

int main(int argc, char** argv) {
  auto session = MpiSession::Create(&argc, &argv);
  if (!session.ok()) return 1;
  const int steps = argc > 1 ? std::atoi(argv[1]) : 10;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  torch::set_num_threads(1);
  auto comm = std::move(MpiCommunicator::Create(**session)).value();
  torch::manual_seed(1);
  ModelSpec spec;
  spec.hidden = {512, 512};
  auto model = std::move(gantry::model::BuildSequential(spec, {1, 28, 28}, gantry::data::kNumClasses)).value();
  OptimizerSpec ospec;
  ospec.momentum = 0;
  auto opt = std::move(BuildOptimizer(ospec, model->parameters())).value();
  torch::Tensor x = torch::randn({64, 1, 28, 28});
  torch::Tensor y = torch::randint(0, 10, {64});
  const int64_t mib = 1 << 20;
  // Overlap only matters with several buckets: compare it at 1 MiB.
  std::vector<Config> configs = {{"default", Reducer::kDefaultBucketBytes, true},
                                 {"bucket_1MiB", mib, true},
                                 {"bucket_1MiB_overlap_off", mib, false},
                                 {"bucket_256KiB", mib / 4, true},
                                 {"bucket_4MiB", 4 * mib, true},
                                 {"bucket_25MiB", 25 * mib, true},
                                 {"no_communication", -1, false}};
  (void)StepSeconds(*comm, model, *opt, configs[0], 3, x, y);  // warm-up
  std::map<std::string, std::vector<double>> t;
  for (int r = 0; r < rounds; ++r) {
    for (const auto& c : configs) t[c.name].push_back(StepSeconds(*comm, model, *opt, c, steps, x, y));
  }
  if (comm->rank() == 0) {
    const std::string w = std::to_string(comm->size()) + "rank";
    Spread base = Summarise(t["default"]);
    // Raw step time: the wrapper compares 1 and 2 ranks from these.
    Emit("worker_train", "step_seconds_" + w, base.median, "s", t["default"].size(), base, base,
         "default config; baseline = same");
    for (const auto& c : configs) {
      if (c.name == "default") continue;
      Spread s = Summarise(t[c.name]);
      // > 1: the default is faster than this alternative.
      Emit("worker_train", "step_time_ratio_" + c.name + "_vs_default_" + w, s.median / base.median, "x",
           t[c.name].size(), base, s, "seconds per step; gantry = default (" + std::to_string(Reducer::kDefaultBucketBytes >> 20) + " MiB buckets, overlap on), baseline = " + c.name);
    }
  }
  comm.reset();
  return 0;
}
