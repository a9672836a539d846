#include "coordinator/coordinator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "tests/coordinator/fake_launcher.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

using testing::FakeLauncher;
using testing::FakeRetention;
using testing::RecordingSink;
using namespace std::chrono_literals;

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path();
    testing::WriteStandInMnist(root_ / "data");
    Open();
  }
  void TearDown() override {
    coord_.reset();  // before tmp_ removes its files
  }
  void Open(int slots = 2) {
    coord_.reset();
    CoordinatorOptions o;
    o.slots = slots;
    o.stop_grace = 5s;
    auto c = testing::OpenCoordinator(root_, o, launcher_, sink_, retention_, clock_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    coord_ = std::move(c).value();
  }
  json Spec(int workers, int priority = 0, int max_restarts = 0) {
    return {{"name", "job"},
            {"priority", priority},
            {"data", {{"path", (root_ / "data").string()}}},
            {"resources", {{"workers", workers}}},
            {"train", {{"steps", 10}}},
            {"restart", {{"max_restarts", max_restarts}, {"backoff_seconds", 30}}}};
  }
  std::string Submit(int workers, int priority = 0, int max_restarts = 0) {
    auto j = coord_->Submit(Spec(workers, priority, max_restarts));
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? j->id : "";
  }
  std::string State(const std::string& id) {
    auto d = coord_->Describe(id);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::string(JobStateName(d->job.state)) : "";
  }
  std::string Reason(const std::string& id) { return coord_->Describe(id)->job.reason; }

  gantry::testing::TempDir tmp_;
  std::filesystem::path root_;  // tmp_'s path
  ManualClock clock_;
  FakeLauncher launcher_;
  RecordingSink sink_;
  FakeRetention retention_;
  std::unique_ptr<Coordinator> coord_;
};

TEST_F(CoordinatorTest, RunsJobToSuccess) {
  std::string id = Submit(2);
  EXPECT_EQ(State(id), "RUNNING");
  ASSERT_EQ(launcher_.started.size(), 1u);
  EXPECT_EQ(launcher_.started[0].workers, 2);
  EXPECT_TRUE(std::filesystem::exists(launcher_.started[0].spec_path));
  EXPECT_EQ(coord_->slots_used(), 2);
  launcher_.Finish(id, ExitInfo{0, 0});
  coord_->Tick();
  EXPECT_EQ(State(id), "SUCCEEDED");
  EXPECT_EQ(coord_->slots_used(), 0);
  auto d = coord_->Describe(id);
  EXPECT_EQ(d->attempts[0].outcome, "succeeded");
  // Events announced in order.
  std::vector<std::string> states;
  for (auto& [jid, s] : sink_.events) states.push_back(s);
  EXPECT_EQ(states, (std::vector<std::string>{"QUEUED", "SCHEDULED", "RUNNING", "SUCCEEDED"}));
}

// Job ids are the second plus 16 random bits: 1,000 submissions within one
// (frozen) second draw some suffix twice with probability ~99.95%, and each
// must still get a job of its own.
TEST_F(CoordinatorTest, ABurstOfSubmissionsInOneSecondGetsDistinctIds) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    auto j = coord_->Submit(Spec(1));
    ASSERT_TRUE(j.ok()) << "submission " << i << ": " << j.status().ToString();
    ids.insert(j->id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST_F(CoordinatorTest, GangWaitsForAllSlotsAndSaysWhy) {
  std::string a = Submit(1);
  std::string b = Submit(2);
  EXPECT_EQ(State(a), "RUNNING");
  EXPECT_EQ(State(b), "QUEUED");
  EXPECT_EQ(Reason(b), "waiting for 1 cpu slot: needs 2, 1 of 2 free");
  // A 1-slot job behind b may not jump the queue: a declares no max_runtime,
  // so it may end any moment and b would then wait for the newcomer.
  std::string c = Submit(1);
  EXPECT_EQ(State(c), "QUEUED");
  EXPECT_NE(Reason(c).find("behind job " + b + " (reservation"), std::string::npos) << Reason(c);
  launcher_.Finish(a, ExitInfo{0, 0});
  coord_->Tick();
  EXPECT_EQ(State(b), "RUNNING");
  EXPECT_EQ(State(c), "QUEUED");
}

TEST_F(CoordinatorTest, HigherPriorityGoesFirst) {
  std::string blocker = Submit(2);
  std::string low = Submit(2, 0);
  std::string high = Submit(2, 10);
  launcher_.Finish(blocker, ExitInfo{0, 0});
  coord_->Tick();
  EXPECT_EQ(State(high), "RUNNING");
  EXPECT_EQ(State(low), "QUEUED");
}

TEST_F(CoordinatorTest, RefusesJobsThatCanNeverFit) {
  auto r = coord_->Submit(Spec(3));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  EXPECT_NE(r.status().message().find("resources.workers needs 3 cpu slots"), std::string::npos) << r.status().message();
  auto bad = coord_->Submit({{"name", "x"}, {"data", {{"path", "/nonexistent"}}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("data.path"), std::string::npos);
  auto list = coord_->ListJobs(false, 10);
  EXPECT_TRUE(list->jobs.empty()) << "nothing may be queued";
  EXPECT_TRUE(sink_.events.empty()) << "nothing may be announced";
}

TEST_F(CoordinatorTest, CancelQueuedAndRunning) {
  launcher_.exit_on_stop = false;
  std::string running = Submit(2);
  std::string queued = Submit(2);
  auto q = coord_->Cancel(queued);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(State(queued), "CANCELLED");

  auto r = coord_->Cancel(running);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(launcher_.attempts[running]->stop_requested);
  clock_.Advance(1s);
  coord_->Tick();
  EXPECT_EQ(State(running), "RUNNING") << "until its ranks are gone";
  launcher_.Finish(running, ExitInfo{-1, 15});
  coord_->Tick();
  EXPECT_EQ(State(running), "CANCELLED");
  EXPECT_FALSE(launcher_.attempts[running]->killed);
  EXPECT_EQ(coord_->Describe(running)->attempts[0].outcome, "cancelled");
}

TEST_F(CoordinatorTest, CancelEscalatesToKillAfterGrace) {
  launcher_.exit_on_stop = false;
  std::string id = Submit(2);
  ASSERT_TRUE(coord_->Cancel(id).ok());
  clock_.Advance(4s);
  coord_->Tick();
  EXPECT_FALSE(launcher_.attempts[id]->killed);
  clock_.Advance(2s);
  coord_->Tick();
  EXPECT_TRUE(launcher_.attempts[id]->killed);
  EXPECT_EQ(State(id), "CANCELLED");
  EXPECT_EQ(coord_->slots_used(), 0);
}

TEST_F(CoordinatorTest, FailedAttemptRestartsAfterBackoffThenFails) {
  std::string id = Submit(2, 0, /*max_restarts=*/1);
  launcher_.Finish(id, ExitInfo{1, 0});
  coord_->Tick();
  EXPECT_EQ(State(id), "RESTARTING");
  clock_.Advance(10s);
  coord_->Tick();
  EXPECT_EQ(State(id), "RESTARTING") << "backoff is 30 s";
  clock_.Advance(25s);
  coord_->Tick();
  EXPECT_EQ(State(id), "RUNNING");
  EXPECT_EQ(launcher_.started.back().attempt, 2);
  launcher_.Finish(id, ExitInfo{-1, 11});
  coord_->Tick();
  EXPECT_EQ(State(id), "FAILED");
  EXPECT_NE(Reason(id).find("signal 11"), std::string::npos) << Reason(id);
}

TEST_F(CoordinatorTest, SilentAttemptIsKilledAsHung) {
  json spec = Spec(2);
  spec["restart"]["hang_timeout_seconds"] = 60;
  auto job = coord_->Submit(spec);
  ASSERT_TRUE(job.ok());
  std::string id = job->id;
  clock_.Advance(50s);
  ASSERT_TRUE(coord_->Heartbeat(id, 1, 0, 120).ok());
  ASSERT_TRUE(coord_->Heartbeat(id, 1, 1, 118).ok());
  clock_.Advance(50s);
  coord_->Tick();
  EXPECT_EQ(State(id), "RUNNING") << "heartbeats 50 s ago: slow, not hung";
  auto d = coord_->Describe(id);
  ASSERT_TRUE(d->progress.has_value());
  ASSERT_EQ(d->progress->ranks.size(), 2u);
  EXPECT_EQ(d->progress->ranks[1].step, 118);
  clock_.Advance(15s);
  coord_->Tick();
  EXPECT_TRUE(launcher_.attempts[id]->killed);
  EXPECT_EQ(State(id), "FAILED");
  d = coord_->Describe(id);
  EXPECT_EQ(d->attempts[0].failure_class, "hang");
  EXPECT_NE(Reason(id).find("no heartbeat for 65 s"), std::string::npos) << Reason(id);
  EXPECT_FALSE(coord_->Heartbeat(id, 1, 0, 130).ok()) << "heartbeat for a finished attempt";
}

TEST_F(CoordinatorTest, PreemptedExitRequeuesWithoutUsingARestart) {
  std::string id = Submit(2);
  launcher_.Finish(id, ExitInfo{kExitPreempted, 0});
  coord_->Tick();
  auto d = coord_->Describe(id);
  EXPECT_EQ(d->attempts[0].outcome, "preempted");
  EXPECT_EQ(State(id), "RUNNING") << "requeued and relaunched at once";
  EXPECT_EQ(launcher_.started.back().attempt, 2);
  EXPECT_EQ(d->job.restarts, 0);
}

TEST_F(CoordinatorTest, RetentionFromTheSpecIsCheckedThenQueuedForStorage) {
  Submit(1);
  EXPECT_TRUE(retention_.applied.empty()) << "no keep_* fields: every version is kept";
  json spec = Spec(1);
  spec["checkpoint"] = {{"keep_best", 2}, {"best_metric", "test_loss"}, {"best_mode", "min"}};
  ASSERT_TRUE(coord_->Submit(spec).ok());
  ASSERT_EQ(retention_.applied.size(), 1u);
  EXPECT_EQ(retention_.applied[0]["keep_latest"], 1) << "the newest version is always kept for resume";
  EXPECT_EQ(retention_.applied[0]["keep_best"], 2);
  EXPECT_EQ(retention_.applied[0]["mode"], "min");
  retention_.refuse = true;
  auto refused = coord_->Submit(spec);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(coord_->ListJobs(false, 10)->jobs.size(), 2u) << "a refused policy queues nothing";
  retention_.refuse = false;
  spec["checkpoint"]["best_metric"] = "";
  auto no_metric = coord_->Submit(spec);
  ASSERT_FALSE(no_metric.ok()) << "keep_best without a metric is refused locally, as storage would";
  EXPECT_EQ(no_metric.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_metric.status().message().find("best_metric"), std::string::npos) << no_metric.status().message();
  EXPECT_EQ(retention_.applied.size(), 1u);
}

TEST_F(CoordinatorTest, LaunchErrorFailsTheJob) {
  launcher_.fail_next = true;
  std::string id = Submit(1);
  EXPECT_EQ(State(id), "FAILED");
  EXPECT_NE(Reason(id).find("launch failed"), std::string::npos);
  EXPECT_EQ(coord_->slots_used(), 0);
}

TEST_F(CoordinatorTest, QueueSurvivesRestart) {
  std::string running = Submit(2);
  std::string q1 = Submit(2);
  std::string q2 = Submit(1, 0);
  // The coordinator dies (no Shutdown): the store is all that is left.
  Open();
  coord_->Tick();
  EXPECT_EQ(State(running), "RUNNING") << "recovered job runs again at once: it is first in line";
  auto d = coord_->Describe(running);
  EXPECT_EQ(d->attempts[0].outcome, "interrupted");
  EXPECT_EQ(d->job.attempt, 2);
  EXPECT_EQ(State(q1), "QUEUED");
  EXPECT_EQ(State(q2), "QUEUED");
  launcher_.Finish(running, ExitInfo{0, 0});
  coord_->Tick();
  EXPECT_EQ(State(q1), "RUNNING") << "submit order is kept across restarts";
  EXPECT_EQ(State(q2), "QUEUED");
}

TEST_F(CoordinatorTest, RepeatedSubmitRequestIdQueuesOneJobAcrossRestarts) {
  const std::string rid = "0123456789abcdef0123456789abcdef";
  auto first = coord_->Submit(Spec(1), rid);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto again = coord_->Submit(Spec(1), rid);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->id, first->id);
  // A retry after the coordinator crashed (the reply was lost with it).
  Open();
  auto after = coord_->Submit(Spec(1), rid);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->id, first->id);
  // Another request id, or none, is another job.
  auto other = coord_->Submit(Spec(1), "fedcba9876543210fedcba9876543210");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->id, first->id);
  auto plain = coord_->Submit(Spec(1));
  auto plain2 = coord_->Submit(Spec(1));
  ASSERT_TRUE(plain.ok() && plain2.ok());
  EXPECT_NE(plain->id, plain2->id);
  auto jobs = coord_->ListJobs(false, 100);
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->jobs.size(), 4u);
}

TEST_F(CoordinatorTest, ShutdownRequeuesRunningJobs) {
  std::string id = Submit(2);
  coord_->Shutdown();
  EXPECT_TRUE(launcher_.attempts[id]->preempt_requested) << "workers get the chance to checkpoint";
  EXPECT_EQ(State(id), "QUEUED");
  EXPECT_EQ(coord_->Describe(id)->attempts[0].outcome, "preempted");
  EXPECT_NE(Reason(id).find("requeued"), std::string::npos);
}

TEST_F(CoordinatorTest, LogsAreReadInChunks) {
  std::string id = Submit(1);
  std::string dir = launcher_.started[0].log_dir;
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/rank-0.log") << "hello from rank 0\n";
  auto r = coord_->ReadLog(id, 0, 0, false, 6, 4);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(std::string(r->data.begin(), r->data.end()), "from");
  EXPECT_EQ(r->next_offset, 10);
  EXPECT_FALSE(r->eof);
  EXPECT_FALSE(coord_->ReadLog(id, 0, 5, false, 0, 100).ok()) << "rank out of range";
}

TEST_F(CoordinatorTest, RestartReadoptsALiveAttemptWithAFreshHeartbeatGrace) {
  json spec = Spec(2);
  spec["restart"]["hang_timeout_seconds"] = 60;
  auto job = coord_->Submit(spec);
  ASSERT_TRUE(job.ok());
  std::string id = job->id;
  clock_.Advance(50s);
  // The coordinator dies while the attempt's process group lives on.
  launcher_.alive.insert(id);
  Open();
  ASSERT_EQ(launcher_.adopt_requests.size(), 1u);
  EXPECT_EQ(launcher_.adopt_requests[0].attempt, 1);
  EXPECT_EQ(launcher_.adopt_requests[0].log_dir, launcher_.started[0].log_dir);
  EXPECT_EQ(State(id), "RUNNING");
  EXPECT_EQ(coord_->slots_used(), 2);
  clock_.Advance(50s);  // 100 s since the start, 50 s since the restart
  coord_->Tick();
  EXPECT_EQ(State(id), "RUNNING") << "re-adopted attempts get a fresh grace period";
  EXPECT_EQ(launcher_.started.size(), 1u) << "no second attempt";
  ASSERT_TRUE(coord_->Heartbeat(id, 1, 0, 300).ok());
  launcher_.Finish(id, ExitInfo{0, 0});
  coord_->Tick();
  EXPECT_EQ(State(id), "SUCCEEDED");
  auto d = coord_->Describe(id);
  ASSERT_EQ(d->attempts.size(), 1u);
  EXPECT_EQ(d->attempts[0].outcome, "succeeded");
  EXPECT_EQ(coord_->slots_used(), 0);
}

TEST_F(CoordinatorTest, AttemptThatEndedWhileTheCoordinatorWasDownIsSettledFromItsExitFile) {
  std::string ok = Submit(1);
  std::string bad = Submit(1);
  ASSERT_EQ(launcher_.started.size(), 2u);
  std::ofstream(launcher_.started[0].log_dir + "/" + kExitStatusFile) << "0\n";
  std::ofstream(launcher_.started[1].log_dir + "/" + kExitStatusFile) << "3\n";
  Open();
  EXPECT_TRUE(launcher_.adopt_requests.empty()) << "the exit file settles it; nothing to adopt";
  coord_->Tick();
  EXPECT_EQ(State(ok), "SUCCEEDED");
  EXPECT_EQ(State(bad), "FAILED");
  EXPECT_EQ(coord_->Describe(bad)->attempts[0].exit_code, 3);
  EXPECT_EQ(launcher_.started.size(), 2u) << "no attempt was restarted";
}

TEST_F(CoordinatorTest, AttemptNeitherAliveNorEndedIsInterrupted) {
  std::string id = Submit(1);
  Open();
  ASSERT_EQ(launcher_.adopt_requests.size(), 1u);
  auto d = coord_->Describe(id);
  EXPECT_EQ(d->attempts[0].outcome, "interrupted");
  EXPECT_EQ(d->attempts[0].failure_class, "coordinator_restart");
}

}  // namespace
}  // namespace gantry::coordinator
