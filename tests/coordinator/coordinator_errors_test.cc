// No dropped errors: a transition whose write fails does not happen and is
// not announced; a corrupt stored row is a corruption error, not a default.
// Writes are made to fail with SQLite triggers installed through a second
// connection to the same database (RAISE(ABORT) fails the statement exactly
// as a full disk or an I/O error would).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/sqlite.h"
#include "coordinator/coordinator.h"
#include "tests/coordinator/fake_launcher.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

using testing::FakeLauncher;
using testing::FakeRetention;
using testing::RecordingSink;
using namespace std::chrono_literals;

class CoordinatorErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path();
    std::filesystem::create_directories(root_ + "/data");
    for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                          "t10k-labels-idx1-ubyte.gz"}) {
      std::ofstream(root_ + "/data/" + f) << "x";
    }
    db_path_ = root_ + "/coordinator.db";
    auto store = JobStore::Open(db_path_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    CoordinatorOptions o;
    o.slots = 2;
    o.stop_grace = 5s;
    coord_ = std::make_unique<Coordinator>(o, DataDir(root_), std::move(store).value(), launcher_, sink_,
                                           retention_, clock_);
    ASSERT_TRUE(coord_->Recover().ok());
    auto db = sql::Db::Open(db_path_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    other_ = std::make_unique<sql::Db>(std::move(db).value());
  }
  void TearDown() override { coord_.reset(); }

  json Spec(int workers) {
    return {{"name", "job"},
            {"data", {{"path", root_ + "/data"}}},
            {"resources", {{"workers", workers}}},
            {"train", {{"steps", 10}}}};
  }
  // Makes every `op` (INSERT/UPDATE) on `table` fail until Heal().
  void Break(const std::string& op, const std::string& table) {
    std::string name = "fail_" + op + "_" + table;
    ASSERT_TRUE(other_->Exec("CREATE TRIGGER " + name + " BEFORE " + op + " ON " + table +
                             " BEGIN SELECT RAISE(ABORT, 'injected write failure'); END;")
                    .ok());
    triggers_.push_back(name);
  }
  void Heal() {
    for (const auto& t : triggers_) ASSERT_TRUE(other_->Exec("DROP TRIGGER " + t).ok());
    triggers_.clear();
  }
  std::string State(const std::string& id) {
    auto d = coord_->Describe(id);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::string(JobStateName(d->job.state)) : "";
  }
  std::vector<std::string> Events(const std::string& id) {
    std::vector<std::string> out;
    for (const auto& [jid, s] : sink_.events) {
      if (jid == id) out.push_back(s);
    }
    return out;
  }

  gantry::testing::TempDir tmp_;
  std::string root_, db_path_;
  ManualClock clock_;
  FakeLauncher launcher_;
  RecordingSink sink_;
  FakeRetention retention_;
  std::unique_ptr<Coordinator> coord_;
  std::unique_ptr<sql::Db> other_;
  std::vector<std::string> triggers_;
};

TEST_F(CoordinatorErrorsTest, SubmitThatCannotBeStoredFailsAndAnnouncesNothing) {
  Break("INSERT", "jobs");
  auto r = coord_->Submit(Spec(1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("injected write failure"), std::string::npos) << r.status().ToString();
  EXPECT_TRUE(sink_.events.empty());
  EXPECT_TRUE(launcher_.started.empty());
  Heal();
  EXPECT_TRUE(coord_->ListJobs(false, 10)->jobs.empty());
  EXPECT_EQ(coord_->ClusterStatus().jobs_queued, 0);
}

TEST_F(CoordinatorErrorsTest, EndOfAttemptIsRetriedUntilItIsStored) {
  auto job = coord_->Submit(Spec(2));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const std::string id = job->id;
  ASSERT_EQ(State(id), "RUNNING");
  Break("UPDATE", "jobs");
  launcher_.Finish(id, ExitInfo{0, 0});
  coord_->Tick();
  EXPECT_EQ(State(id), "RUNNING") << "the job's new state was not stored";
  EXPECT_EQ(Events(id), (std::vector<std::string>{"QUEUED", "SCHEDULED", "RUNNING"})) << "nor announced";
  EXPECT_EQ(coord_->slots_used(), 2) << "its slots stay held until the outcome is stored";
  Heal();
  coord_->Tick();
  EXPECT_EQ(State(id), "SUCCEEDED");
  EXPECT_EQ(Events(id), (std::vector<std::string>{"QUEUED", "SCHEDULED", "RUNNING", "SUCCEEDED"}));
  EXPECT_EQ(coord_->slots_used(), 0);
  EXPECT_EQ(coord_->Describe(id)->attempts.at(0).outcome, "succeeded");
}

TEST_F(CoordinatorErrorsTest, AttemptWriteFailureFailsTheTransitionToo) {
  auto job = coord_->Submit(Spec(1));
  ASSERT_TRUE(job.ok());
  Break("UPDATE", "attempts");
  launcher_.Finish(job->id, ExitInfo{1, 0});
  coord_->Tick();
  EXPECT_EQ(State(job->id), "RUNNING");
  EXPECT_EQ(Events(job->id).back(), "RUNNING");
  Heal();
  coord_->Tick();
  EXPECT_EQ(State(job->id), "FAILED");
  EXPECT_EQ(coord_->Describe(job->id)->attempts.at(0).failure_class, "exit_code");
}

TEST_F(CoordinatorErrorsTest, JobIsNotStartedWhenItsAttemptCannotBeRecorded) {
  Break("INSERT", "attempts");
  auto job = coord_->Submit(Spec(1));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_TRUE(launcher_.started.empty()) << "nothing runs that the store does not know";
  EXPECT_EQ(State(job->id), "QUEUED");
  for (const auto& s : Events(job->id)) EXPECT_NE(s, "RUNNING");
  EXPECT_EQ(coord_->slots_used(), 0);
  Heal();
  coord_->Tick();
  EXPECT_EQ(State(job->id), "RUNNING");
  ASSERT_EQ(launcher_.started.size(), 1u);
  EXPECT_EQ(launcher_.started[0].attempt, 1) << "the failed try did not use up an attempt number";
}

TEST_F(CoordinatorErrorsTest, CancelThatCannotBeStoredIsAnError) {
  launcher_.exit_on_stop = false;
  auto running = coord_->Submit(Spec(2));
  auto queued = coord_->Submit(Spec(2));
  ASSERT_TRUE(running.ok() && queued.ok());
  Break("UPDATE", "jobs");
  auto c1 = coord_->Cancel(queued->id);
  EXPECT_FALSE(c1.ok());
  auto c2 = coord_->Cancel(running->id);
  EXPECT_FALSE(c2.ok());
  EXPECT_FALSE(launcher_.attempts[running->id]->stop_requested) << "not stopped: the cancel was not stored";
  Heal();
  EXPECT_EQ(State(queued->id), "QUEUED");
  for (const auto& e : Events(queued->id)) EXPECT_EQ(e, "QUEUED") << "the failed cancel was not announced";
  for (const auto& e : Events(running->id)) EXPECT_NE(e, "CANCELLED");
  ASSERT_TRUE(coord_->Cancel(queued->id).ok());
  EXPECT_EQ(State(queued->id), "CANCELLED");
}

TEST_F(CoordinatorErrorsTest, CorruptStoredSpecIsCorruption) {
  auto job = coord_->Submit(Spec(1));
  ASSERT_TRUE(job.ok());
  launcher_.Finish(job->id, ExitInfo{0, 0});
  coord_->Tick();
  ASSERT_EQ(State(job->id), "SUCCEEDED");  // no longer in memory: read from the store
  auto q = other_->Prepare("UPDATE jobs SET spec = '{\"name\": \"job\", trunc' WHERE id = ?");
  ASSERT_TRUE(q.ok());
  q->Bind(1, job->id);
  ASSERT_TRUE(q->Run().ok());
  auto d = coord_->Describe(job->id);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kCorruption) << d.status().ToString();
  EXPECT_NE(d.status().message().find(job->id), std::string::npos);
  auto list = coord_->ListJobs(false, 10);
  ASSERT_FALSE(list.ok()) << "a corrupt row is not listed as an empty spec";
  EXPECT_EQ(list.status().code(), StatusCode::kCorruption);
}

TEST_F(CoordinatorErrorsTest, StoredSpecThatNoLongerParsesIsCorruption) {
  auto job = coord_->Submit(Spec(1));
  ASSERT_TRUE(job.ok());
  launcher_.Finish(job->id, ExitInfo{0, 0});
  coord_->Tick();
  auto q = other_->Prepare("UPDATE jobs SET spec = '[1, 2]' WHERE id = ?");
  ASSERT_TRUE(q.ok());
  q->Bind(1, job->id);
  ASSERT_TRUE(q->Run().ok());
  auto d = coord_->Describe(job->id);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kCorruption) << d.status().ToString();
}

TEST(MonitorEventSinkTest, BadMonitorEndpointDisablesEventsInsteadOfThrowing) {
  zmq::context_t ctx;
  std::unique_ptr<MonitorEventSink> sink;
  EXPECT_NO_THROW(sink = std::make_unique<MonitorEventSink>(ctx, "not-an-endpoint"));
  Job job;
  job.id = "j-1";
  EXPECT_NO_THROW(sink->JobChanged(job, 1.0));
  EXPECT_EQ(sink->dropped(), 0) << "disabled, not failing per event";
}

}  // namespace
}  // namespace gantry::coordinator
