#include "worker/cli_options.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "tests/worker/test_util.h"

namespace gantry::worker {
namespace {

TEST(CliOptions, ParsesTheLaunchersCommandLine) {
  std::vector<std::string> args = {"gantry-worker", "--job-id", "j-1", "--attempt", "2",
                                   "--spec", "/x/spec.json", "--storage", "", "--monitor",
                                   "tcp://127.0.0.1:7602", "--log-dir", "/tmp/l"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ParsedArgs p = ParseArgs(static_cast<int>(argv.size()), argv.data());
  ASSERT_TRUE(p.options.has_value());
  EXPECT_EQ(p.options->job_id, "j-1");
  EXPECT_EQ(p.options->attempt, 2);
  EXPECT_EQ(p.options->storage, "");
  EXPECT_EQ(p.options->monitor, "tcp://127.0.0.1:7602");
  EXPECT_EQ(p.options->log_level, "info");
}

TEST(CliOptions, RankComesFromTheLaunchersEnvironment) {
  ::unsetenv("OMPI_COMM_WORLD_RANK");
  ::unsetenv("PMI_RANK");
  ::unsetenv("SLURM_PROCID");
  EXPECT_EQ(RankFromEnv(), 0);
  ::setenv("SLURM_PROCID", "5", 1);
  EXPECT_EQ(RankFromEnv(), 5);
  ::setenv("OMPI_COMM_WORLD_RANK", "3", 1);
  EXPECT_EQ(RankFromEnv(), 3);
  ::setenv("OMPI_COMM_WORLD_RANK", "garbage", 1);
  EXPECT_EQ(RankFromEnv(), 5);
  ::unsetenv("OMPI_COMM_WORLD_RANK");
  ::unsetenv("SLURM_PROCID");
}

TEST(CliOptions, LoadsTheSpecTheCoordinatorWrites) {
  testing::TempDir dir;
  json j = {{"name", "fm"}, {"data", {{"path", "data"}}}, {"train", {{"steps", 3}}}};
  auto spec = JobSpec::Parse(j);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  std::ofstream(dir.File("spec.json")) << spec->ToJson().dump();
  auto loaded = LoadJobSpec(dir.File("spec.json"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->train.steps, 3);
  EXPECT_DOUBLE_EQ(loaded->train.optimizer.lr, spec->train.optimizer.lr);
  EXPECT_EQ(loaded->data.path, dir.File("data"));  // relative to the spec file

  auto missing = LoadJobSpec(dir.File("nope.json"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(ExitCodeFor(missing.status()), kExitBadInput);
}

// A CPU-only worker refuses CUDA jobs at start, saying how to get one that
// runs them; a CUDA+NCCL build accepts them.
TEST(CliOptions, CudaDeviceNeedsACudaAndNcclBuild) {
  testing::TempDir dir;
  std::ofstream(dir.File("cuda.yaml")) << "name: x\ndata: {path: /d}\nresources: {device: cuda}\n";
  auto cuda = LoadJobSpec(dir.File("cuda.yaml"));
#if defined(GANTRY_WITH_CUDA) && defined(GANTRY_WITH_NCCL)
  ASSERT_TRUE(cuda.ok()) << cuda.status().ToString();
  EXPECT_EQ(cuda->resources.device, "cuda");
#else
  ASSERT_FALSE(cuda.ok());
  EXPECT_EQ(ExitCodeFor(cuda.status()), kExitBadInput);
  const std::string& m = cuda.status().message();
  EXPECT_NE(m.find("resources.device"), std::string::npos) << m;
  EXPECT_NE(m.find("-DGANTRY_WITH_CUDA=ON -DGANTRY_WITH_NCCL=ON"), std::string::npos) << m;
#endif
}

TEST(CliOptions, ExampleJobSpecIsValid) {
  const char* src = std::getenv("GANTRY_SOURCE_DIR");
#ifdef GANTRY_TEST_SOURCE_DIR
  std::string root = src != nullptr ? src : GANTRY_TEST_SOURCE_DIR;
#else
  if (src == nullptr) GTEST_SKIP() << "GANTRY_SOURCE_DIR not set";
  std::string root = src;
#endif
  auto spec = LoadJobSpec(root + "/configs/jobs/fashion_mnist.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->name, "fashion-mnist");
  EXPECT_EQ(spec->resources.workers, 2);
  EXPECT_GT(spec->checkpoint.every_steps, 0);
}

}  // namespace
}  // namespace gantry::worker
