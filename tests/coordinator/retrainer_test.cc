// Retrainer with a fake coordinator behind RetrainPorts and explicit times:
// cron, new data and alerts start one run at a time; the gate decides; only
// a better challenger moves the alias; every decision is in the history.
#include "coordinator/retrain/retrainer.h"

#include <gtest/gtest.h>


#include "common/config.h"
#include "tests/coordinator/utc_text.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

using TimePoint = Retrainer::TimePoint;

TimePoint At(const char* text) { return testing_time::Utc(text); }

class FakePorts : public RetrainPorts {
 public:
  Result<std::string> SubmitRun(const ScheduleSpec&, const RunPlan& plan) override {
    if (refuse_submit) return Status::Unavailable("queue full");
    plans.push_back(plan);
    std::string id = "job-" + std::to_string(plans.size());
    outcomes[id] = RunOutcome{};  // running
    return id;
  }
  Result<RunOutcome> PollRun(const std::string& job_id) override { return outcomes.at(job_id); }
  Result<std::vector<DataFile>> ListData(const std::string&) override { return files; }
  Result<std::optional<int64_t>> ResolveAlias(const std::string&, const std::string&) override { return alias; }
  Status MoveAlias(const std::string&, const std::string&, int64_t version) override {
    alias = version;
    ++moves;
    return Status::Ok();
  }

  // Ends job `id` with the challenger at `acc` and the champion (when one was
  // warm-started from) at `champion_acc` on the same held-out set.
  void Finish(const std::string& id, int64_t version, double acc, std::optional<double> champion_acc) {
    RunOutcome o;
    o.finished = true;
    o.succeeded = true;
    o.challenger = EvalScores{version, {{"accuracy", acc}}};
    if (champion_acc) o.champion = EvalScores{*alias, {{"accuracy", *champion_acc}}};
    o.data_fingerprint = "fp-" + id;
    outcomes[id] = o;
  }

  std::vector<RunPlan> plans;
  std::map<std::string, RunOutcome> outcomes;
  std::vector<DataFile> files;
  std::optional<int64_t> alias;
  int moves = 0;
  bool refuse_submit = false;
};

class RetrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = sql::Db::Open(dir_.File("c.db"));
    ASSERT_TRUE(db.ok());
    db_.emplace(std::move(db).value());
    ASSERT_TRUE(db_->Migrate(ScheduleMigrations()).ok());
    store_.emplace(*db_);
    retrainer_.emplace(*store_, ports_);
  }

  void Add(const std::string& triggers, double created_at, const std::string& evaluation = "{floor: 0.5}") {
    auto j = YamlToJson(R"(
name: s
job:
  name: fmnist
  model: {builtin: mlp}
  data: {format: idx, path: /usr/share/datasets/fashion-mnist}
triggers: )" + triggers + "\nevaluation: " + evaluation + "\n");
    ASSERT_TRUE(j.ok());
    auto spec = ScheduleSpec::Parse(*j);
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    ASSERT_TRUE(store_->Add(*spec, created_at).ok());
  }

  std::vector<RunRecord> History() {
    auto h = store_->History("s");
    EXPECT_TRUE(h.ok());
    return h.ok() ? *h : std::vector<RunRecord>{};
  }

  testing::TempDir dir_;
  std::optional<sql::Db> db_;
  std::optional<ScheduleStore> store_;
  FakePorts ports_;
  std::optional<Retrainer> retrainer_;
};

TEST_F(RetrainerTest, CronRunPromotesABetterChallengerAndRecordsIt) {
  ports_.alias = 3;
  Add("{cron: '0 * * * *'}", ToSeconds(At("2026-12-01 10:00:00")));
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:30:00")).ok());
  EXPECT_TRUE(ports_.plans.empty()) << "not due before 11:00";
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 11:00:00")).ok());
  ASSERT_EQ(ports_.plans.size(), 1u);
  EXPECT_EQ(*ports_.plans[0].champion_version, 3) << "warm start from the champion";
  EXPECT_EQ(ports_.plans[0].triggers[0].kind, TriggerKind::kCron);
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 11:00:30")).ok());
  EXPECT_EQ(ports_.plans.size(), 1u) << "one run at a time";

  ports_.Finish("job-1", 4, 0.88, 0.85);
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 11:05:00")).ok());
  EXPECT_EQ(*ports_.alias, 4);
  auto h = History();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].state, RunState::kPromoted);
  ASSERT_TRUE(h[0].decision);
  EXPECT_EQ(*h[0].decision->champion_version, 3);
  EXPECT_EQ(*h[0].decision->challenger_version, 4);
  EXPECT_DOUBLE_EQ(*h[0].decision->challenger_value, 0.88);
  EXPECT_EQ(h[0].decision->data_fingerprint, "fp-job-1");
  EXPECT_NE(h[0].decision->reason.find("beats champion v3"), std::string::npos) << h[0].decision->reason;
}

TEST_F(RetrainerTest, WorseChallengerIsNeverPromoted) {
  ports_.alias = 3;
  Add("{cron: '@hourly'}", ToSeconds(At("2026-12-01 10:00:00")));
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 11:00:00")).ok());
  ports_.Finish("job-1", 4, 0.80, 0.85);
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 11:10:00")).ok());
  EXPECT_EQ(*ports_.alias, 3);
  EXPECT_EQ(ports_.moves, 0);
  auto h = History();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].state, RunState::kRejected);
  EXPECT_NE(h[0].decision->reason.find("below the margin"), std::string::npos);
}

TEST_F(RetrainerTest, MissedCronRunsWhileDownRunOnce) {
  ports_.alias = 1;
  Add("{cron: '@hourly'}", ToSeconds(At("2026-12-01 10:00:00")));
  // The coordinator was down for a day: one tick, one run.
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-02 10:20:00")).ok());
  ports_.Finish("job-1", 2, 0.9, 0.8);
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-02 10:21:00")).ok());
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-02 10:22:00")).ok());
  EXPECT_EQ(ports_.plans.size(), 1u);
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-02 11:00:00")).ok());
  EXPECT_EQ(ports_.plans.size(), 2u) << "and the next hour fires as usual";
}

TEST_F(RetrainerTest, TriggersDuringARunCoalesceIntoTheNextRun) {
  ports_.alias = 1;
  Add("{drift: true, alerts: [live-accuracy-low]}", 0);
  ASSERT_TRUE(retrainer_->TriggerNow("s", At("2026-12-01 10:00:00")).ok());
  EXPECT_EQ(retrainer_->TriggerNow("nope", At("2026-12-01 10:00:00")).code(), StatusCode::kNotFound);
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:00:01")).ok());
  ASSERT_EQ(ports_.plans.size(), 1u);

  retrainer_->OnAlert({"drift-share", "drift", "fmnist", "share 0.7", ""}, At("2026-12-01 10:01:00"));
  retrainer_->OnAlert({"live-accuracy-low", "threshold", "fmnist", "accuracy 0.6 < 0.8", ""}, At("2026-12-01 10:02:00"));
  retrainer_->OnAlert({"drift-share", "drift", "other-model", "", ""}, At("2026-12-01 10:02:00"));
  retrainer_->OnAlert({"unrelated", "threshold", "fmnist", "", ""}, At("2026-12-01 10:02:00"));
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:03:00")).ok());
  EXPECT_EQ(ports_.plans.size(), 1u);

  ports_.Finish("job-1", 2, 0.7, 0.8);
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:04:00")).ok());  // settles job-1
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:05:00")).ok());  // starts the next
  ASSERT_EQ(ports_.plans.size(), 2u);
  const auto& t = ports_.plans[1].triggers;
  ASSERT_EQ(t.size(), 2u) << "both alerts, one run";
  EXPECT_EQ(t[0].kind, TriggerKind::kDrift);
  EXPECT_EQ(t[1].kind, TriggerKind::kMetric);
  EXPECT_NE(t[1].detail.find("accuracy 0.6 < 0.8"), std::string::npos);
}

TEST_F(RetrainerTest, NewDataStartsOneRunWithThoseFilesAndAFirstModelNeedsTheFloor) {
  Add("{new_data: {dir: /srv/in, min_files: 2}}", 0, "{floor: 0.85}");
  ports_.files = {{"a.csv", 10}};
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:00:00")).ok());
  EXPECT_TRUE(ports_.plans.empty());
  ports_.files.push_back({"b.csv", 10});
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:01:00")).ok());
  ASSERT_EQ(ports_.plans.size(), 1u);
  EXPECT_EQ(ports_.plans[0].new_files, (std::vector<std::string>{"a.csv", "b.csv"}));
  EXPECT_FALSE(ports_.plans[0].champion_version) << "no champion yet";

  ports_.Finish("job-1", 1, 0.80, std::nullopt);
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:02:00")).ok());
  EXPECT_FALSE(ports_.alias) << "0.80 is below the floor 0.85";
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:03:00")).ok());
  EXPECT_EQ(ports_.plans.size(), 1u) << "the same files never start a second run";

  ports_.files.push_back({"c.csv", 10});
  ports_.files.push_back({"d.csv", 10});
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:04:00")).ok());
  ASSERT_EQ(ports_.plans.size(), 2u);
  EXPECT_EQ(ports_.plans[1].new_files, (std::vector<std::string>{"c.csv", "d.csv"}));
  ports_.Finish("job-2", 2, 0.86, std::nullopt);
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:05:00")).ok());
  EXPECT_EQ(*ports_.alias, 2) << "first model above the floor is promoted";
}

TEST_F(RetrainerTest, FailedJobOrRefusedSubmitNeverMovesTheAlias) {
  ports_.alias = 5;
  Add("{}", 0);
  ports_.refuse_submit = true;
  ASSERT_TRUE(retrainer_->TriggerNow("s", At("2026-12-01 10:00:00")).ok());
  EXPECT_FALSE(retrainer_->Tick(At("2026-12-01 10:00:01")).ok());
  EXPECT_TRUE(History().empty());
  ports_.refuse_submit = false;
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:00:02")).ok());
  ASSERT_EQ(ports_.plans.size(), 1u) << "the manual trigger was kept for the retry";

  RunOutcome failed;
  failed.finished = true;
  failed.error = "FAILED (exit 1)";
  ports_.outcomes["job-1"] = failed;
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 10:01:00")).ok());
  auto h = History();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].state, RunState::kFailed);
  EXPECT_NE(h[0].error.find("FAILED (exit 1)"), std::string::npos);
  EXPECT_EQ(*ports_.alias, 5);
}

TEST_F(RetrainerTest, PausedScheduleStartsNothing) {
  ports_.alias = 1;
  Add("{cron: '@hourly'}", ToSeconds(At("2026-12-01 10:00:00")));
  ASSERT_TRUE(store_->SetPaused("s", true).ok());
  ASSERT_TRUE(retrainer_->TriggerNow("s", At("2026-12-01 10:10:00")).ok());
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 12:00:00")).ok());
  EXPECT_TRUE(ports_.plans.empty());
  ASSERT_TRUE(store_->SetPaused("s", false).ok());
  ASSERT_TRUE(retrainer_->Tick(At("2026-12-01 12:00:01")).ok());
  ASSERT_EQ(ports_.plans.size(), 1u);
  ASSERT_EQ(ports_.plans[0].triggers.size(), 1u) << "the trigger sent while paused was dropped";
  EXPECT_EQ(ports_.plans[0].triggers[0].kind, TriggerKind::kCron);
}

}  // namespace
}  // namespace gantry::coordinator
