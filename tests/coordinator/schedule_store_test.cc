// ScheduleStore on a real SQLite file: schedules and their run history
// survive a reopen, and a batch of new data starts exactly one run even when
// the coordinator restarts between the scan and the next tick.
#include "coordinator/retrain/schedule_store.h"

#include <gtest/gtest.h>

#include "common/config.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

ScheduleSpec Spec(const std::string& name) {
  auto j = YamlToJson("name: " + name + R"(
job:
  name: fmnist
  model: {builtin: mlp}
  data: {format: idx, path: /usr/share/datasets/fashion-mnist}
triggers:
  new_data: {dir: /srv/incoming, min_files: 1}
evaluation: {floor: 0.5}
)");
  EXPECT_TRUE(j.ok());
  auto s = ScheduleSpec::Parse(*j);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return *s;
}

class ScheduleStoreTest : public ::testing::Test {
 protected:
  sql::Db Open() {
    auto db = sql::Db::Open(dir_.File("coordinator.db"), true);
    EXPECT_TRUE(db.ok());
    EXPECT_TRUE(db->Migrate(ScheduleMigrations()).ok());
    return std::move(db).value();
  }
  testing::TempDir dir_;
};

TEST_F(ScheduleStoreTest, SchedulesSurviveAReopen) {
  {
    sql::Db db = Open();
    ScheduleStore store(db);
    ASSERT_TRUE(store.Add(Spec("nightly"), 10).ok());
    Status dup = store.Add(Spec("nightly"), 11);
    EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
    EXPECT_NE(dup.message().find("gantry schedule rm nightly"), std::string::npos);
    ASSERT_TRUE(store.SetPaused("nightly", true).ok());
    ASSERT_TRUE(store.SetLastCron("nightly", 1234.5).ok());
    EXPECT_EQ(store.SetPaused("nope", true).code(), StatusCode::kNotFound);
  }
  sql::Db db = Open();
  ScheduleStore store(db);
  auto r = store.Get("nightly");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->paused);
  EXPECT_EQ(*r->last_cron_at, 1234.5);
  EXPECT_EQ(r->spec.ToJson(), Spec("nightly").ToJson());
  ASSERT_TRUE(store.Remove("nightly").ok());
  EXPECT_EQ(store.Get("nightly").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.Remove("nightly").code(), StatusCode::kNotFound);
}

TEST_F(ScheduleStoreTest, NewDataBatchStartsExactlyOneRunAcrossARestart) {
  const std::vector<DataFile> listing = {{"shard-0001.csv", 500}, {"shard-0002.csv", 500}};
  {
    sql::Db db = Open();
    ScheduleStore store(db);
    ASSERT_TRUE(store.Add(Spec("s"), 1).ok());
    auto used = store.UsedFiles("s");
    ASSERT_TRUE(used.ok());
    NewDataTracker tracker({1, 0}, *used);
    auto trig = tracker.Check(listing, kNow);
    ASSERT_TRUE(trig);
    std::vector<std::string> files;
    for (const DataFile& f : tracker.Pending(listing)) files.push_back(f.name);
    auto seq = store.StartRun("s", "job-1", {*trig}, files, 2);
    ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    // The coordinator dies here, before anything else happens.
  }
  sql::Db db = Open();
  ScheduleStore store(db);
  auto used = store.UsedFiles("s");
  ASSERT_TRUE(used.ok());
  NewDataTracker tracker({1, 0}, *used);
  EXPECT_FALSE(tracker.Check(listing, kNow)) << "the batch already started a run";
  auto active = store.ActiveRun("s");
  ASSERT_TRUE(active.ok());
  ASSERT_TRUE(active->has_value()) << "the run is still recorded as going";
  EXPECT_EQ((*active)->job_id, "job-1");
  EXPECT_EQ((*active)->files.size(), 2u);
  // A file can belong to one run only, even if a caller tries twice.
  auto again = store.StartRun("s", "job-2", {}, {"shard-0001.csv"}, 3);
  EXPECT_FALSE(again.ok());
  auto history = store.History("s");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 1u) << "the refused run left nothing behind";
}

TEST_F(ScheduleStoreTest, DecisionsAreRecordedWithBothScores) {
  sql::Db db = Open();
  ScheduleStore store(db);
  ASSERT_TRUE(store.Add(Spec("s"), 1).ok());
  auto seq = store.StartRun("s", "job-1", {{TriggerKind::kDrift, "drift share 0.7", kNow}}, {}, 2);
  ASSERT_TRUE(seq.ok());
  RunDecision d;
  d.promote = false;
  d.reason = "challenger v5 accuracy 0.8 vs champion v4 0.85: gain -0.05 is below the margin 0";
  d.metric = "accuracy";
  d.champion_version = 4;
  d.challenger_version = 5;
  d.champion_value = 0.85;
  d.challenger_value = 0.8;
  d.data_fingerprint = "sha256:abc";
  ASSERT_TRUE(store.FinishRun(*seq, RunState::kRejected, d, "", 3).ok());
  auto history = store.History("s");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  const RunRecord& r = history->front();
  EXPECT_EQ(r.state, RunState::kRejected);
  ASSERT_EQ(r.triggers.size(), 1u);
  EXPECT_EQ(r.triggers[0].kind, TriggerKind::kDrift);
  EXPECT_EQ(r.triggers[0].at, kNow);
  ASSERT_TRUE(r.decision);
  EXPECT_EQ(*r.decision->champion_version, 4);
  EXPECT_EQ(*r.decision->challenger_value, 0.8);
  EXPECT_EQ(r.decision->reason, d.reason);
  EXPECT_EQ(*r.finished_at, 3);
  auto active = store.ActiveRun("s");
  ASSERT_TRUE(active.ok());
  EXPECT_FALSE(active->has_value());
  EXPECT_EQ(store.FinishRun(999, RunState::kFailed, std::nullopt, "x", 4).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace gantry::coordinator
