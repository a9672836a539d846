#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

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

// A stand-in for mpirun that runs until the file $GANTRY_TEST_GO exists and
// then exits 3; SIGTERM (forwarded to the group) makes it exit 7.
std::string FakeMpirun(const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::string path = dir + "/fake-mpirun";
  std::ofstream(path) << "#!/bin/sh\ntrap 'exit 7' TERM\n"
                         "while [ ! -f \"$GANTRY_TEST_GO\" ]; do sleep 0.02; done\nexit 3\n";
  ::chmod(path.c_str(), 0755);
  ::setenv("GANTRY_TEST_GO", (dir + "/go").c_str(), 1);
  return path;
}

std::optional<ExitInfo> PollUntilEnded(Launch& launch) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::optional<ExitInfo> e;
  while (!e && std::chrono::steady_clock::now() < deadline) {
    e = launch.Poll();
    if (!e) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return e;
}

TEST(LocalMpiLauncher, ReadoptsAGroupItDidNotStartAndReadsItsExitFile) {
  std::string dir = ::testing::TempDir() + "gantry-readopt-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  LocalMpiLauncher l({FakeMpirun(dir), "/bin/true", {}});
  LaunchRequest r;
  r.job_id = "j-readopt";
  r.attempt = 1;
  r.log_dir = dir + "/attempt-1";
  auto launch = l.Start(r);
  ASSERT_TRUE(launch.ok()) << launch.status().ToString();
  int pid = (*launch)->pid(), pgid = (*launch)->pgid();
  EXPECT_EQ(pid, pgid) << "the attempt leads its own process group";
  // The coordinator "dies": its Launch goes without killing anything.
  (*launch)->Abandon();
  launch->reset();
  ASSERT_TRUE(GroupAlive(pgid));

  LocalMpiLauncher restarted({"mpirun", "/bin/true", {}});
  EXPECT_EQ(restarted.Adopt({"j-other", 1, pid, pgid, r.log_dir}).status().code(), StatusCode::kNotFound)
      << "a group that runs another job's attempt is not adopted";
  auto adopted = restarted.Adopt({r.job_id, 1, pid, pgid, r.log_dir});
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_FALSE((*adopted)->Poll().has_value()) << "still running";
  EXPECT_FALSE(ReadExitStatus(r.log_dir).has_value());
  std::ofstream(dir + "/go") << "";
  auto e = PollUntilEnded(**adopted);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->exit_code, 3);
  EXPECT_EQ(e->signal, 0);
  ASSERT_TRUE(ReadExitStatus(r.log_dir).has_value());
  EXPECT_EQ(ReadExitStatus(r.log_dir)->exit_code, 3);
  // Poll() SIGKILLs what is left of the group; once that landed, nothing is adoptable.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (restarted.Adopt({r.job_id, 1, pid, pgid, r.log_dir}).ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(restarted.Adopt({r.job_id, 1, pid, pgid, r.log_dir}).ok()) << "nothing of it is alive any more";
  std::filesystem::remove_all(dir);
}

TEST(LocalMpiLauncher, WrapperOutlivesTheSignalsMeantForMpirunAndRecordsTheExit) {
  std::string dir = ::testing::TempDir() + "gantry-wrapper-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  LocalMpiLauncher l({FakeMpirun(dir), "/bin/true", {}});
  LaunchRequest r;
  r.job_id = "j-wrap";
  r.attempt = 1;
  r.log_dir = dir + "/attempt-1";
  auto launch = l.Start(r);
  ASSERT_TRUE(launch.ok()) << launch.status().ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the fake mpirun install its trap
  (*launch)->RequestStop();  // SIGTERM to the group
  auto e = PollUntilEnded(**launch);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->exit_code, 7) << e->ToString();
  ASSERT_TRUE(ReadExitStatus(r.log_dir).has_value()) << "the wrapper survived SIGTERM and wrote the exit";
  EXPECT_EQ(ReadExitStatus(r.log_dir)->exit_code, 7);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gantry::coordinator
