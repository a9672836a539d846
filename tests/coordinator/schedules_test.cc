// Schedules on a real Coordinator (fake launcher, manual clock) and a fake
// registry: a new-data batch starts exactly one run, also across a
// coordinator restart; a worse challenger is never promoted; a promotion
// moves the alias and is in the history; pointing the alias back (what
// `gantry ckpt alias set` does) makes the old champion the next run's start.
#include "coordinator/retrain/schedules.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "coordinator/retrain/schedule_service.h"
#include "tests/coordinator/fake_launcher.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

namespace fs = std::filesystem;
using testing::FakeLauncher;
using testing::FakeRetention;
using testing::RecordingSink;
using namespace std::chrono_literals;

// One model's versions and aliases, as storage would keep them.
class FakeRegistry final : public ModelRegistry {
 public:
  Result<std::optional<int64_t>> ResolveAlias(const std::string&, const std::string& alias) override {
    if (down) return Status::Unavailable("storage is down");
    auto it = aliases.find(alias);
    return it == aliases.end() ? std::optional<int64_t>() : std::optional<int64_t>(it->second);
  }
  Status SetAlias(const std::string&, const std::string& alias, int64_t version) override {
    if (down) return Status::Unavailable("storage is down");
    aliases[alias] = version;
    ++moves;
    return Status::Ok();
  }
  Result<std::optional<SavedVersion>> LatestOfJob(const std::string&, const std::string& job_id) override {
    if (down) return Status::Unavailable("storage is down");
    auto it = saved.find(job_id);
    return it == saved.end() ? std::optional<SavedVersion>() : std::optional<SavedVersion>(it->second);
  }
  // Job `job_id` saved version `version` with these held-out scores (and the
  // champion's when it had one).
  void Save(const std::string& job_id, int64_t version, double acc, std::optional<int64_t> champion = {},
            double champion_acc = 0) {
    SavedVersion v;
    v.version = version;
    v.metrics = {{"test_accuracy", acc}, {"test_loss", 1 - acc}, {"accuracy", 0.99}};
    if (champion) {
      v.metrics["champion_version"] = static_cast<double>(*champion);
      v.metrics["champion_test_accuracy"] = champion_acc;
      v.metrics["champion_test_loss"] = 1 - champion_acc;
    }
    v.data_fingerprint = "fp-" + job_id;
    saved[job_id] = v;
  }

  std::map<std::string, int64_t> aliases;
  std::map<std::string, SavedVersion> saved;
  int moves = 0;
  bool down = false;
};

class SchedulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path();
    incoming_ = root_ / "incoming";
    fs::create_directories(incoming_);
    fs::create_directories(root_ / "holdout");
    std::ofstream(root_ / "holdout" / "test.csv") << "a,label\n1,0\n";
    Open();
  }
  void TearDown() override {
    schedules_.reset();
    coord_.reset();
  }
  // (Re)starts the coordinator and its schedules on the same database.
  void Open() {
    schedules_.reset();
    coord_.reset();
    CoordinatorOptions o;
    o.slots = 2;
    o.stop_grace = 5s;
    auto c = testing::OpenCoordinator(root_, o, launcher_, sink_, retention_, clock_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    coord_ = std::move(c).value();
    auto s = Schedules::Open((root_ / "coordinator.db").string(), *coord_, registry_, clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    schedules_ = std::move(s).value();
  }
  json ScheduleJson(const std::string& name, bool new_data = true) {
    json triggers = json::object();
    if (new_data) triggers["new_data"] = {{"dir", incoming_.string()}, {"min_files", 2}};
    triggers["drift"] = true;
    triggers["alerts"] = {"live-accuracy-low"};
    return {{"name", name},
            {"model", "fmnist"},
            {"job",
             {{"name", "fmnist-retrain"},
              {"data", {{"format", "shards"}, {"path", incoming_.string()},
                        {"test_file", (root_ / "holdout" / "test.csv").string()}}},
              {"train", {{"steps", 5}}}}},
            {"triggers", triggers},
            {"replay", 0.5},
            {"evaluation", {{"metric", "accuracy"}, {"margin", 0.01}, {"floor", 0.5}}}};
  }
  void AddSchedule(const std::string& name = "nightly", bool new_data = true) {
    auto r = schedules_->Add(ScheduleJson(name, new_data));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  void Shard(const std::string& name) { std::ofstream(incoming_ / name) << "a,label\n1,0\n2,1\n"; }
  void Tick() {
    coord_->Tick();
    Status st = schedules_->TickNow();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  std::vector<RunRecord> History(const std::string& name = "nightly") {
    auto h = schedules_->History(name);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? *h : std::vector<RunRecord>{};
  }
  size_t Jobs() { return coord_->ListJobs(false, 1000)->jobs.size(); }
  JobSpec JobOf(const std::string& id) { return coord_->Describe(id)->job.spec; }
  // The run's job ends successfully (its version saved in the registry first).
  void FinishJob(const std::string& id) {
    launcher_.Finish(id, ExitInfo{0, 0});
    coord_->Tick();
    ASSERT_EQ(JobStateName(coord_->Describe(id)->job.state), "SUCCEEDED");
  }

  gantry::testing::TempDir tmp_;
  fs::path root_;
  fs::path incoming_;
  ManualClock clock_;
  FakeLauncher launcher_;
  RecordingSink sink_;
  FakeRetention retention_;
  FakeRegistry registry_;
  std::unique_ptr<Coordinator> coord_;
  std::unique_ptr<Schedules> schedules_;
};

TEST_F(SchedulesTest, NewDataBatchStartsExactlyOneRunAcrossARestart) {
  AddSchedule();
  Shard("part-0001.csv");
  Tick();
  EXPECT_EQ(Jobs(), 0u) << "one file is below min_files 2";
  Shard("part-0002.csv");
  Shard(".part-0003.csv.tmp");  // still being written: not counted
  Tick();
  ASSERT_EQ(Jobs(), 1u);
  auto runs = History();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].files, (std::vector<std::string>{"part-0001.csv", "part-0002.csv"}));
  ASSERT_EQ(runs[0].triggers.size(), 1u);
  EXPECT_EQ(runs[0].triggers[0].kind, TriggerKind::kNewData);
  const std::string job = runs[0].job_id;
  // The job trains on exactly the batch: the run's section of the job spec.
  JobSpec spec = JobOf(job);
  EXPECT_EQ(spec.checkpoint.model, "fmnist");
  EXPECT_EQ(spec.data.path, incoming_.string());
  EXPECT_EQ(spec.retrain.new_files, runs[0].files);
  EXPECT_DOUBLE_EQ(spec.retrain.replay, 0.5);
  EXPECT_EQ(spec.warm_start, "") << "no champion yet: a first model starts fresh";

  // The coordinator restarts while the run's job is still running.
  launcher_.alive.insert(job);
  Open();
  for (int i = 0; i < 3; ++i) Tick();
  EXPECT_EQ(Jobs(), 1u) << "the same batch must not start a second run after a restart";
  ASSERT_EQ(History().size(), 1u);

  // The run ends; its files stay used, so nothing starts again.
  registry_.Save(job, 1, 0.7);
  FinishJob(job);
  Tick();
  Tick();
  EXPECT_EQ(Jobs(), 1u);
  runs = History();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].state, RunState::kPromoted) << runs[0].error;
  EXPECT_EQ(registry_.aliases["production"], 1);

  // Restart once more: used files are remembered in the database.
  Open();
  Tick();
  EXPECT_EQ(Jobs(), 1u);
  // The next batch starts the next run, with only its own files.
  Shard("part-0003.csv");
  Shard("part-0004.csv");
  Tick();
  ASSERT_EQ(Jobs(), 2u);
  runs = History();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].files, (std::vector<std::string>{"part-0003.csv", "part-0004.csv"}));
  spec = JobOf(runs[1].job_id);
  EXPECT_EQ(spec.warm_start, "fmnist@v1");
  EXPECT_EQ(spec.retrain.champion, "fmnist@v1");
}

TEST_F(SchedulesTest, WorseChallengerIsNeverPromoted) {
  registry_.aliases["production"] = 3;
  AddSchedule("nightly", /*new_data=*/false);
  ASSERT_TRUE(schedules_->Trigger("nightly").ok());
  Tick();
  auto runs = History();
  ASSERT_EQ(runs.size(), 1u);
  const std::string job = runs[0].job_id;
  EXPECT_EQ(JobOf(job).retrain.champion, "fmnist@v3");
  // Better than the floor, but not better than the champion on the same set.
  registry_.Save(job, 4, 0.84, 3, 0.85);
  FinishJob(job);
  Tick();
  runs = History();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].state, RunState::kRejected);
  ASSERT_TRUE(runs[0].decision);
  const RunDecision& d = *runs[0].decision;
  EXPECT_FALSE(d.promote);
  EXPECT_EQ(d.champion_version, 3);
  EXPECT_EQ(d.challenger_version, 4);
  EXPECT_DOUBLE_EQ(*d.champion_value, 0.85);
  EXPECT_DOUBLE_EQ(*d.challenger_value, 0.84);
  EXPECT_EQ(d.data_fingerprint, "fp-" + job);
  EXPECT_NE(d.reason.find("below the margin"), std::string::npos) << d.reason;
  EXPECT_EQ(registry_.moves, 0);
  EXPECT_EQ(registry_.aliases["production"], 3);

  // Equal to the champion plus less than the margin: still not promoted.
  ASSERT_TRUE(schedules_->Trigger("nightly").ok());
  Tick();
  runs = History();
  ASSERT_EQ(runs.size(), 2u);
  registry_.Save(runs[1].job_id, 5, 0.855, 3, 0.85);
  FinishJob(runs[1].job_id);
  Tick();
  EXPECT_EQ(History()[1].state, RunState::kRejected);
  EXPECT_EQ(registry_.aliases["production"], 3);

  // A failed job leaves the champion where it was.
  ASSERT_TRUE(schedules_->Trigger("nightly").ok());
  Tick();
  runs = History();
  ASSERT_EQ(runs.size(), 3u);
  launcher_.Finish(runs[2].job_id, ExitInfo{1, 0});
  coord_->Tick();
  Tick();
  runs = History();
  EXPECT_EQ(runs[2].state, RunState::kFailed);
  EXPECT_NE(runs[2].error.find("FAILED"), std::string::npos) << runs[2].error;
  EXPECT_EQ(registry_.moves, 0);
}

TEST_F(SchedulesTest, PromotionMovesTheAliasIsInHistoryAndCanBeRolledBack) {
  registry_.aliases["production"] = 3;
  AddSchedule("nightly", /*new_data=*/false);
  ASSERT_TRUE(schedules_->Trigger("nightly").ok());
  Tick();
  std::string job = History()[0].job_id;
  registry_.Save(job, 4, 0.90, 3, 0.85);
  FinishJob(job);
  Tick();
  auto runs = History();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].state, RunState::kPromoted);
  EXPECT_EQ(registry_.aliases["production"], 4);
  EXPECT_EQ(registry_.moves, 1);
  // The history's wire form carries both versions, both scores and the reason.
  json wire = RunJson(runs[0]);
  EXPECT_EQ(wire["state"], "promoted");
  EXPECT_EQ(wire["decision"]["champion_version"], 3);
  EXPECT_EQ(wire["decision"]["challenger_version"], 4);
  EXPECT_DOUBLE_EQ(wire["decision"]["challenger_value"].get<double>(), 0.90);
  EXPECT_DOUBLE_EQ(wire["decision"]["champion_value"].get<double>(), 0.85);
  EXPECT_EQ(wire["decision"]["data_fingerprint"], "fp-" + job);
  EXPECT_NE(wire["decision"]["reason"].get<std::string>().find("beats champion v3"), std::string::npos)
      << wire.dump();

  // Rollback: `gantry ckpt alias set fmnist production v3` is set_alias in
  // storage. The champion is v3 again: the next run starts from it and is
  // judged against it.
  ASSERT_TRUE(registry_.SetAlias("fmnist", "production", 3).ok());
  ASSERT_TRUE(schedules_->Trigger("nightly").ok());
  Tick();
  runs = History();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(JobOf(runs[1].job_id).warm_start, "fmnist@v3");
  EXPECT_EQ(JobOf(runs[1].job_id).retrain.champion, "fmnist@v3");
}

TEST_F(SchedulesTest, DriftAlertOnTheWatchedDataOrModelStartsARun) {
  AddSchedule();
  schedules_->OnAlert({"data-drift", "threshold", "", "not a drift rule", ""});
  schedules_->OnAlert({"data-drift", "drift", "other-model", "another model", ""});
  Tick();
  EXPECT_EQ(Jobs(), 0u);
  schedules_->OnAlert({"data-drift", "drift", "", "share 0.6 >= 0.5", incoming_.string()});
  Tick();
  ASSERT_EQ(Jobs(), 1u);
  auto runs = History();
  ASSERT_EQ(runs.size(), 1u);
  ASSERT_EQ(runs[0].triggers.size(), 1u);
  EXPECT_EQ(runs[0].triggers[0].kind, TriggerKind::kDrift);
  EXPECT_NE(runs[0].triggers[0].detail.find("share 0.6"), std::string::npos);
  // While it runs, another alert (by the model's label) waits for the next run.
  schedules_->OnAlert({"data-drift", "drift", "fmnist", "again", ""});
  Tick();
  EXPECT_EQ(Jobs(), 1u);
}

TEST_F(SchedulesTest, ServingAlertNamedByTheScheduleStartsAMetricRun) {
  AddSchedule("nightly", /*new_data=*/false);
  // A serving alert's subject is DEPLOYMENT/MODEL.
  schedules_->OnAlert({"live-accuracy-low", "threshold", "", "accuracy 0.6 < 0.8", "web/other-model"});
  schedules_->OnAlert({"not-listed", "threshold", "", "x", "web/fmnist"});
  Tick();
  EXPECT_EQ(Jobs(), 0u);
  schedules_->OnAlert({"live-accuracy-low", "threshold", "", "accuracy 0.6 < 0.8", "web/fmnist"});
  Tick();
  auto runs = History();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].triggers[0].kind, TriggerKind::kMetric);
  EXPECT_NE(runs[0].triggers[0].detail.find("accuracy 0.6 < 0.8"), std::string::npos);
}

TEST_F(SchedulesTest, RefusalsNameTheProblem) {
  AddSchedule();
  auto dup = schedules_->Add(ScheduleJson("nightly"));
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  json bad = ScheduleJson("idx");
  bad["job"]["data"] = {{"format", "idx"}, {"path", root_.string()}};
  auto r = schedules_->Add(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("data.format must be shards"), std::string::npos) << r.status().ToString();
  json relative = ScheduleJson("rel");
  relative["triggers"]["new_data"]["dir"] = "incoming";
  EXPECT_NE(schedules_->Add(relative).status().message().find("triggers.new_data.dir must be an absolute path"),
            std::string::npos);
  EXPECT_EQ(schedules_->Trigger("nope").code(), StatusCode::kNotFound);
  ASSERT_TRUE(schedules_->SetPaused("nightly", true).ok());
  Status paused = schedules_->Trigger("nightly");
  EXPECT_EQ(paused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(paused.message().find("gantry schedule resume nightly"), std::string::npos);
  // A run going blocks removal; afterwards the history stays.
  ASSERT_TRUE(schedules_->SetPaused("nightly", false).ok());
  ASSERT_TRUE(schedules_->Trigger("nightly").ok());
  Tick();
  ASSERT_EQ(History().size(), 1u);
  EXPECT_EQ(schedules_->Remove("nightly").code(), StatusCode::kFailedPrecondition);
}

TEST_F(SchedulesTest, StorageDownDelaysTheDecisionWithoutLosingIt) {
  registry_.aliases["production"] = 1;
  AddSchedule("nightly", /*new_data=*/false);
  ASSERT_TRUE(schedules_->Trigger("nightly").ok());
  Tick();
  const std::string job = History()[0].job_id;
  registry_.Save(job, 2, 0.95, 1, 0.80);
  FinishJob(job);
  registry_.down = true;
  coord_->Tick();
  EXPECT_FALSE(schedules_->TickNow().ok());
  EXPECT_EQ(History()[0].state, RunState::kRunning);
  registry_.down = false;
  Tick();
  EXPECT_EQ(History()[0].state, RunState::kPromoted);
  EXPECT_EQ(registry_.aliases["production"], 2);
}

TEST(ListDataFilesTest, CountsSamplesAndSkipsFilesInProgress) {
  gantry::testing::TempDir tmp;
  const fs::path d = tmp.path();
  std::ofstream(d / "b.csv") << "x,label\n1,0\n2,1\n3,0";  // no final newline
  std::ofstream(d / "a.csv") << "x,label\n1,0\n";
  std::ofstream(d / "_c.csv") << "x\n";
  std::ofstream(d / "d.csv.part") << "x\n";
  fs::create_directories(d / "sub");
  auto files = ListDataFiles(d.string());
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].name, "a.csv");
  EXPECT_EQ((*files)[0].samples, 1);
  EXPECT_EQ((*files)[1].name, "b.csv");
  EXPECT_EQ((*files)[1].samples, 3);
  EXPECT_FALSE(ListDataFiles((d / "missing").string()).ok());
}

}  // namespace
}  // namespace gantry::coordinator
