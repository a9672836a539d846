// What the coordinator makes of Slurm's end states: each SlurmJobExit()
// (the slurm launcher's mapping of `scontrol show job`) is fed to a
// Coordinator through the fake launcher, and the job's state and its
// attempt's failure class are checked (docs/operations.md, "Running on Slurm").
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "coordinator/coordinator.h"
#include "coordinator/slurm_launcher.h"
#include "tests/coordinator/fake_launcher.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

using namespace std::chrono_literals;

ExitInfo SlurmEnd(const std::string& state, const std::string& exit_code) {
  auto info = ParseScontrolJob("JobId=7 JobName=gantry-j-a1 JobState=" + state + " Reason=None ExitCode=" +
                               exit_code + " TimeLimit=00:05:00 NodeList=node3\n");
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  auto e = SlurmJobExit(*info);
  EXPECT_TRUE(e.has_value()) << state;
  return e.value_or(ExitInfo());
}

class SlurmClassesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path();
    testing::WriteStandInMnist(root_ / "data");
    CoordinatorOptions o;
    o.slots = 2;
    o.stop_grace = 5s;
    auto c = testing::OpenCoordinator(root_, o, launcher_, sink_, retention_, clock_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    coord_ = std::move(c).value();
  }
  void TearDown() override { coord_.reset(); }

  // Submits a 2-rank job, ends its attempt with `exit`, returns its view.
  JobView Run(const ExitInfo& exit, int max_restarts = 1, double max_runtime = 0) {
    json spec = {{"name", "job"},
                 {"data", {{"path", (root_ / "data").string()}}},
                 {"resources", {{"workers", 2}}},
                 {"train", {{"steps", 10}}},
                 {"restart", {{"max_restarts", max_restarts}, {"backoff_seconds", 30}}}};
    if (max_runtime > 0) spec["max_runtime"] = max_runtime;
    auto j = coord_->Submit(spec);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    launcher_.Finish(j->id, exit);
    coord_->Tick();
    auto v = coord_->Describe(j->id);
    EXPECT_TRUE(v.ok());
    return *v;
  }

  gantry::testing::TempDir tmp_;
  std::filesystem::path root_;
  ManualClock clock_;
  testing::FakeLauncher launcher_;
  testing::RecordingSink sink_;
  testing::FakeRetention retention_;
  std::unique_ptr<Coordinator> coord_;
};

TEST_F(SlurmClassesTest, CompletedSucceeds) {
  JobView v = Run(SlurmEnd("COMPLETED", "0:0"));
  EXPECT_EQ(v.job.state, JobState::kSucceeded);
}

TEST_F(SlurmClassesTest, ExitCodeFailsByTheRestartPolicy) {
  JobView v = Run(SlurmEnd("FAILED", "3:0"), /*max_restarts=*/0);
  EXPECT_EQ(v.job.state, JobState::kFailed);
  EXPECT_EQ(v.attempts.back().failure_class, "exit_code");
  EXPECT_EQ(v.attempts.back().exit_code, 3);
}

TEST_F(SlurmClassesTest, NodeFailIsNodeLostAndRestarts) {
  JobView v = Run(SlurmEnd("NODE_FAIL", "0:0"), /*max_restarts=*/1);
  EXPECT_EQ(v.job.state, JobState::kRestarting);
  EXPECT_EQ(v.attempts.back().failure_class, "node_lost");
  EXPECT_NE(v.attempts.back().message.find("NODE_FAIL (nodes node3)"), std::string::npos)
      << v.attempts.back().message;
  // Not the local launcher's guess for an unexplained SIGKILL.
  EXPECT_EQ(v.attempts.back().message.find("out of memory"), std::string::npos) << v.attempts.back().message;
}

TEST_F(SlurmClassesTest, CancelledInSlurmCancelsTheJob) {
  JobView v = Run(SlurmEnd("CANCELLED", "0:15"), /*max_restarts=*/3);
  EXPECT_EQ(v.job.state, JobState::kCancelled);
  EXPECT_EQ(v.attempts.back().failure_class, "cancelled");
  EXPECT_NE(v.job.reason.find("outside Gantry"), std::string::npos) << v.job.reason;
}

TEST_F(SlurmClassesTest, TimeoutIsATimeLimitAndFinal) {
  JobView v = Run(SlurmEnd("TIMEOUT", "0:15"), /*max_restarts=*/3, /*max_runtime=*/300);
  EXPECT_EQ(v.job.state, JobState::kFailed);
  EXPECT_EQ(v.attempts.back().failure_class, "time_limit");
  EXPECT_EQ(v.job.restarts, 0);
}

TEST_F(SlurmClassesTest, SlurmPreemptionRequeuesWithoutUsingARestart) {
  JobView v = Run(SlurmEnd("PREEMPTED", "0:15"), /*max_restarts=*/0);
  // PREEMPTED, then requeued and (slots being free) started again in the same tick.
  ASSERT_EQ(v.attempts.size(), 2u);
  EXPECT_EQ(v.attempts[0].outcome, "preempted");
  EXPECT_EQ(v.attempts[0].failure_class, "preempted");
  EXPECT_EQ(v.job.state, JobState::kRunning);
  EXPECT_EQ(v.job.restarts, 0);
}

TEST_F(SlurmClassesTest, OutOfMemoryIsClassified) {
  JobView v = Run(SlurmEnd("OUT_OF_MEMORY", "0:9"), /*max_restarts=*/0);
  EXPECT_EQ(v.job.state, JobState::kFailed);
  EXPECT_EQ(v.attempts.back().failure_class, "out_of_memory");
}

}  // namespace
}  // namespace gantry::coordinator
