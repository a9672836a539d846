#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "coordinator/launcher.h"

namespace gantry::coordinator {
namespace {

TEST(LocalMpiLauncher, CommandLineCarriesJobAndEndpoints) {
  LocalMpiLauncher l({"mpirun", "/opt/gantry/bin/gantry-worker", {"--mca", "btl", "self,vader"}});
  LaunchRequest r;
  r.job_id = "j-1";
  r.attempt = 3;
  r.workers = 4;
  r.spec_path = "/d/jobs/j-1/spec.json";
  r.log_dir = "/d/jobs/j-1/attempt-3";
  r.storage_endpoint = "tcp://127.0.0.1:7601";
  r.monitor_endpoint = "tcp://127.0.0.1:7602";
  auto argv = l.CommandLine(r);
  auto has = [&](const std::vector<std::string>& seq) {
    return std::search(argv.begin(), argv.end(), seq.begin(), seq.end()) != argv.end();
  };
  EXPECT_EQ(argv[0], "mpirun");
  EXPECT_TRUE(has({"-np", "4"}));
  EXPECT_TRUE(has({"--oversubscribe"}));
  EXPECT_TRUE(has({"--mca", "btl", "self,vader"}));
  EXPECT_TRUE(has({"/opt/gantry/bin/gantry-worker", "--job-id", "j-1", "--attempt", "3"}));
  EXPECT_TRUE(has({"--storage", "tcp://127.0.0.1:7601", "--monitor", "tcp://127.0.0.1:7602"}));
  EXPECT_TRUE(has({"--log-dir", "/d/jobs/j-1/attempt-3"}));
  EXPECT_EQ(has({"--allow-run-as-root"}), ::geteuid() == 0);
}

TEST(LocalMpiLauncher, StartsAndReapsARealProcessGroup) {
  // A stand-in for mpirun: the launcher only needs an executable.
  std::string dir = ::testing::TempDir() + "gantry-launch-" + std::to_string(::getpid());
  LocalMpiLauncher l({"/bin/sh", "-c", {}});
  LaunchRequest r;
  r.job_id = "j-2";
  r.workers = 1;
  r.log_dir = dir;
  // "/bin/sh -np 1 ..." fails fast with a usage error: exit code != 0.
  auto launch = l.Start(r);
  ASSERT_TRUE(launch.ok()) << launch.status().ToString();
  std::optional<ExitInfo> e;
  for (int i = 0; i < 500 && !e; ++i) {
    e = (*launch)->Poll();
    if (!e) usleep(10000);
  }
  ASSERT_TRUE(e.has_value());
  EXPECT_FALSE(e->ok());
}

}  // namespace
}  // namespace gantry::coordinator
