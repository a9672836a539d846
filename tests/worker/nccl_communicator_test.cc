// NcclCommunicator (built with GANTRY_WITH_NCCL only). Tests that need a GPU
// skip, saying why, when the CUDA runtime sees none, and tests that need CUDA
// tensors also when LibTorch has no CUDA (Debian's libtorch is CPU-only).
// Ranks run as threads (one GPU each, as NCCL requires) or as processes
// under mpirun; the mpirun test re-runs this binary as the ranks.
#include "worker/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "tests/worker/process_util.h"
#include "tests/worker/test_util.h"
#include "worker/mpi_communicator.h"

namespace gantry::worker {
namespace {

// Set in the environment of the ranks that NcclCommunicatorTest.TwoRanksUnderMpirun starts.
constexpr const char* kChildEnv = "GANTRY_NCCL_TEST_CHILD";

// GPUs the CUDA runtime sees; 0 with `why` set when it sees none.
int VisibleGpus(std::string* why) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
    return 0;
  }
  if (count == 0) *why = "cudaGetDeviceCount found no device";
  return count;
}

// Skips the test unless `n` GPUs are visible (and, with `tensors`, LibTorch
// can make CUDA tensors on them).
#define GANTRY_NEED_GPUS(n, tensors)                                                                  \
  do {                                                                                                \
    std::string why_;                                                                                 \
    const int have_ = VisibleGpus(&why_);                                                             \
    if (have_ == 0) GTEST_SKIP() << "no GPU: " << why_;                                               \
    if (have_ < (n)) {                                                                                \
      GTEST_SKIP() << "needs " << (n) << " GPUs (NCCL allows one rank per GPU), " << have_ << " visible"; \
    }                                                                                                 \
    if ((tensors) && !torch::cuda::is_available()) {                                                  \
      GTEST_SKIP() << "this LibTorch has no CUDA (CPU-only build): no CUDA tensors";                  \
    }                                                                                                 \
  } while (0)

const std::vector<torch::ScalarType> kDtypes = {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16,
                                                torch::kInt,   torch::kLong,   torch::kByte, torch::kChar};

// 0, 1, 2, ... (small enough for every dtype above) plus `base`, on `device`.
torch::Tensor Ramp(torch::ScalarType type, int64_t n, int base, const torch::Device& device) {
  return (torch::arange(n, torch::kInt64).remainder(50) + base).to(device, type);
}

Result<std::unique_ptr<NcclCommunicator>> OneRank(testing::ThreadGroup& group) {
  testing::ThreadCommunicator boot(group, 0);
  return NcclCommunicator::Create(boot, {.device = 0});
}

TEST(NcclCommunicatorTest, WithoutAGpuCreationFailsClearly) {
  std::string why;
  if (VisibleGpus(&why) > 0) GTEST_SKIP() << "a GPU is visible; this test covers machines without one";
  testing::ThreadGroup group(1);
  testing::ThreadCommunicator boot(group, 0);
  auto comm = MakeNcclCommunicator(boot);
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(comm.status().message().find("no CUDA device visible to rank 0: "), std::string::npos)
      << comm.status().ToString();
}

TEST(NcclCommunicatorTest, CreatesOneRankOnTheChosenDevice) {
  GANTRY_NEED_GPUS(1, false);
  testing::ThreadGroup group(1);
  auto comm = OneRank(group);
  ASSERT_TRUE(comm.ok()) << comm.status().ToString();
  EXPECT_EQ((*comm)->rank(), 0);
  EXPECT_EQ((*comm)->size(), 1);
  EXPECT_EQ((*comm)->device(), 0);
}

TEST(NcclCommunicatorTest, OneRankAllreduceAndBroadcastKeepValuesInEveryDtype) {
  GANTRY_NEED_GPUS(1, true);
  testing::ThreadGroup group(1);
  auto comm = OneRank(group);
  ASSERT_TRUE(comm.ok()) << comm.status().ToString();
  const torch::Device gpu(torch::kCUDA, 0);
  for (torch::ScalarType type : kDtypes) {
    SCOPED_TRACE(c10::toString(type));
    torch::Tensor want = Ramp(type, 1000, 1, gpu);
    torch::Tensor t = want.clone();
    ASSERT_TRUE((*comm)->AllreduceSum(t).ok());
    EXPECT_TRUE(torch::equal(t, want));
    ASSERT_TRUE((*comm)->Broadcast(t, 0).ok());
    EXPECT_TRUE(torch::equal(t, want));
    auto work = (*comm)->AllreduceSumAsync(t);
    ASSERT_TRUE(work->Wait().ok());
    EXPECT_TRUE(torch::equal(t, want));
  }
  torch::Tensor empty = torch::empty({0}, torch::TensorOptions(torch::kFloat).device(gpu));
  EXPECT_TRUE((*comm)->AllreduceSum(empty).ok());
}

TEST(NcclCommunicatorTest, RefusesCpuStridedAndUnsupportedTensors) {
  GANTRY_NEED_GPUS(1, true);
  testing::ThreadGroup group(1);
  auto comm = OneRank(group);
  ASSERT_TRUE(comm.ok()) << comm.status().ToString();
  torch::Tensor cpu = torch::ones({4});
  Status st = (*comm)->AllreduceSum(cpu);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("must be on CUDA device 0 (got cpu)"), std::string::npos) << st.ToString();
  EXPECT_EQ((*comm)->AllreduceSumAsync(cpu)->Wait().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*comm)->Broadcast(cpu, 0).code(), StatusCode::kInvalidArgument);

  const torch::Device gpu(torch::kCUDA, 0);
  torch::Tensor strided = torch::ones({4, 4}, torch::TensorOptions().device(gpu)).t();
  EXPECT_EQ((*comm)->AllreduceSum(strided).code(), StatusCode::kInvalidArgument);
  torch::Tensor flags = torch::ones({4}, torch::TensorOptions(torch::kBool).device(gpu));
  st = (*comm)->AllreduceSum(flags);
  EXPECT_NE(st.message().find("unsupported dtype"), std::string::npos) << st.ToString();
  torch::Tensor ok = torch::ones({4}, torch::TensorOptions().device(gpu));
  EXPECT_EQ((*comm)->Broadcast(ok, 1).code(), StatusCode::kInvalidArgument);  // root out of range
  // A refused call leaves the communicator usable.
  EXPECT_TRUE((*comm)->AllreduceSum(ok).ok());
}

// Two ranks as threads of this process, on GPUs 0 and 1.
TEST(NcclCommunicatorTest, TwoRanksAsThreadsSumAndBroadcast) {
  GANTRY_NEED_GPUS(2, true);
  testing::ThreadGroup group(2);
  std::vector<std::string> failures(2);
  auto rank_main = [&](int r) {
    std::string& fail = failures[static_cast<size_t>(r)];
    testing::ThreadCommunicator boot(group, r);
    auto comm = NcclCommunicator::Create(boot, {.device = r});
    if (!comm.ok()) {
      fail = comm.status().ToString();
      return;
    }
    const torch::Device gpu(torch::kCUDA, r);
    for (torch::ScalarType type : kDtypes) {
      torch::Tensor t = Ramp(type, 3000, r + 1, gpu);  // rank 0: ramp+1, rank 1: ramp+2
      torch::Tensor sum = Ramp(type, 3000, 0, gpu).mul(2).add(3);
      if (Status st = (*comm)->AllreduceSum(t); !st.ok() || !torch::equal(t, sum)) {
        fail += std::string(" allreduce ") + c10::toString(type) + " " + st.ToString();
      }
      torch::Tensor b = Ramp(type, 3000, r + 1, gpu);
      if (Status st = (*comm)->Broadcast(b, 1); !st.ok() || !torch::equal(b, Ramp(type, 3000, 2, gpu))) {
        fail += std::string(" broadcast ") + c10::toString(type) + " " + st.ToString();
      }
    }
    // Several buckets in flight at once, waited for in order, like the Reducer.
    std::vector<torch::Tensor> buckets;
    std::vector<std::unique_ptr<Work>> works;
    for (int i = 0; i < 4; ++i) {
      buckets.push_back(torch::full({1 << 16}, static_cast<float>(r + i), torch::TensorOptions().device(gpu)));
      works.push_back((*comm)->AllreduceSumAsync(buckets.back()));
    }
    for (int i = 0; i < 4; ++i) {
      Status st = works[static_cast<size_t>(i)]->Wait();
      const float want = static_cast<float>(2 * i + 1);
      if (!st.ok() || !torch::equal(buckets[static_cast<size_t>(i)],
                                    torch::full({1 << 16}, want, torch::TensorOptions().device(gpu)))) {
        fail += " async bucket " + std::to_string(i) + " " + st.ToString();
      }
    }
  };
  std::thread other(rank_main, 1);
  rank_main(0);
  other.join();
  EXPECT_EQ(failures[0], "");
  EXPECT_EQ(failures[1], "");
}

// The parent: starts this binary as two MPI ranks running NcclMpirunChild.
TEST(NcclCommunicatorTest, TwoRanksUnderMpirun) {
  GANTRY_NEED_GPUS(2, true);
  const std::string mpirun = FindOnPath("mpirun");
  if (mpirun.empty()) GTEST_SKIP() << "mpirun not found on PATH (install openmpi-bin)";
  testing::TempDir dir;
  SpawnOptions opts;
  // --timeout: a hung collective ends the job instead of this test.
  opts.argv = {mpirun, "-np", "2", "--oversubscribe", "--bind-to", "none", "--timeout", "120",
               std::filesystem::read_symlink("/proc/self/exe").string(), "--gtest_filter=NcclMpirunChild.*"};
  opts.env = {{"OMPI_ALLOW_RUN_AS_ROOT", "1"}, {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"},
              {"OMP_NUM_THREADS", "1"}, {kChildEnv, "1"}};
  opts.stdout_path = dir.File("mpirun.log");
  auto child = ChildProcess::Spawn(opts);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  ExitInfo exit = child->Wait();
  const std::string log = Slurp(dir.File("mpirun.log"));
  EXPECT_TRUE(exit.ok()) << exit.ToString() << "\n" << log;
  EXPECT_EQ(log.find("[  SKIPPED ]"), std::string::npos) << log;
}

// One rank of TwoRanksUnderMpirun: NCCL bootstrapped over MPI, as in
// gantry-worker, and the ByDeviceCommunicator the trainer gets.
TEST(NcclMpirunChild, RankOfTwoRanksUnderMpirun) {
  if (std::getenv(kChildEnv) == nullptr) {
    GTEST_SKIP() << "runs only as a rank started by NcclCommunicatorTest.TwoRanksUnderMpirun";
  }
  auto session = MpiSession::Create(nullptr, nullptr);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  {
    auto mpi = MpiCommunicator::Create(**session);
    ASSERT_TRUE(mpi.ok()) << mpi.status().ToString();
    const int r = (*mpi)->rank();
    ASSERT_EQ((*mpi)->size(), 2);
    auto nccl = NcclCommunicator::Create(**mpi);
    ASSERT_TRUE(nccl.ok()) << nccl.status().ToString();
    EXPECT_EQ((*nccl)->device(), r);  // local rank r of 2 GPUs or more
    const torch::Device gpu(torch::kCUDA, (*nccl)->device());
    ByDeviceCommunicator comm(**mpi, std::move(nccl).value());

    torch::Tensor g = torch::full({1000}, static_cast<float>(r + 1), torch::TensorOptions().device(gpu));
    ASSERT_TRUE(comm.AllreduceSumAsync(g)->Wait().ok());
    EXPECT_TRUE(torch::equal(g.cpu(), torch::full({1000}, 3.0f)));
    torch::Tensor p = torch::full({10}, static_cast<double>(r), torch::TensorOptions(torch::kDouble).device(gpu));
    ASSERT_TRUE(comm.Broadcast(p, 1).ok());
    EXPECT_TRUE(torch::equal(p.cpu(), torch::full({10}, 1.0, torch::kDouble)));
    // CPU tensors take the MPI path.
    torch::Tensor flag = torch::tensor({int64_t{r}}, torch::kInt64);
    ASSERT_TRUE(comm.AllreduceSum(flag).ok());
    EXPECT_EQ(flag.item<int64_t>(), 1);
    std::string bytes = r == 0 ? "from rank 0" : "";
    ASSERT_TRUE(BroadcastBytes(comm, bytes, 0).ok());
    EXPECT_EQ(bytes, "from rank 0");
  }
}

// Counts what reaches it; sums nothing (one rank).
class CountingCommunicator final : public Communicator {
 public:
  int rank() const override { return 3; }
  int size() const override { return 4; }
  Status AllreduceSum(torch::Tensor&) override {
    ++calls;
    return Status::Ok();
  }
  Status Broadcast(torch::Tensor&, int) override {
    ++calls;
    return Status::Ok();
  }
  int calls = 0;
};

TEST(NcclByDeviceCommunicatorTest, CpuTensorsGoToTheCpuCommunicator) {
  CountingCommunicator cpu;
  auto owned = std::make_unique<CountingCommunicator>();
  CountingCommunicator& cuda = *owned;
  ByDeviceCommunicator comm(cpu, std::move(owned));
  EXPECT_EQ(comm.rank(), 3);
  EXPECT_EQ(comm.size(), 4);
  torch::Tensor t = torch::zeros({3});
  ASSERT_TRUE(comm.AllreduceSum(t).ok());
  ASSERT_TRUE(comm.Broadcast(t, 0).ok());
  ASSERT_TRUE(comm.AllreduceSumAsync(t)->Wait().ok());
  EXPECT_EQ(cpu.calls, 3);
  EXPECT_EQ(cuda.calls, 0);
}

TEST(NcclByDeviceCommunicatorTest, CudaTensorsGoToTheCudaCommunicator) {
  GANTRY_NEED_GPUS(1, true);
  CountingCommunicator cpu;
  auto owned = std::make_unique<CountingCommunicator>();
  CountingCommunicator& cuda = *owned;
  ByDeviceCommunicator comm(cpu, std::move(owned));
  torch::Tensor g = torch::zeros({3}, torch::TensorOptions().device(torch::kCUDA));
  ASSERT_TRUE(comm.AllreduceSum(g).ok());
  ASSERT_TRUE(comm.Broadcast(g, 0).ok());
  ASSERT_TRUE(comm.AllreduceSumAsync(g)->Wait().ok());
  EXPECT_EQ(cuda.calls, 3);
  EXPECT_EQ(cpu.calls, 0);
}

}  // namespace
}  // namespace gantry::worker
