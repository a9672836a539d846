// Scheduling depth: GPU slots from a cluster config, EASY backfill around
// the head's reservation, priority preemption, max_runtime, and each waiting
// job's reason and estimated start. Fake launcher, manual clock; no GPU.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/cluster_config.h"
#include "coordinator/coordinator.h"
#include "coordinator/scheduler.h"
#include "tests/coordinator/fake_launcher.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

using testing::FakeLauncher;
using testing::FakeRetention;
using testing::RecordingSink;
using namespace std::chrono_literals;

// ---- the arithmetic -------------------------------------------------------

TEST(SchedulerMath, ForecastFreeSlotsAndEarliestStart) {
  // 4 slots: one hold of 2 ending in 100 s, one of 1 that never ends.
  Forecast f(4, {{2, 0, 100}, {1, 0, kNever}});
  EXPECT_EQ(f.FreeAt(0), 1);
  EXPECT_EQ(f.FreeAt(100), 3);
  EXPECT_EQ(f.EarliestStart(1, kNever), 0);
  EXPECT_EQ(f.EarliestStart(3, 10), 100);
  EXPECT_EQ(f.EarliestStart(4, 10), kNever) << "needs the hold that never ends";
  // A planned hold from 100 to 150 pushes a 2-slot job of 60 s past it.
  f.Add({2, 100, 150});
  EXPECT_EQ(f.EarliestStart(2, 60), 150);
}

TEST(SchedulerMath, DelaysHeadIsEasysRule) {
  // 4 slots, 1 free; the head needs 3: its reservation is at t=100.
  Forecast f(4, {{3, 0, 100}});
  EXPECT_FALSE(f.DelaysHead(3, 1, 100)) << "ends by the reservation";
  EXPECT_FALSE(f.DelaysHead(3, 1, kNever)) << "at t=100 4 are free: 1 more than the head needs";
  Forecast tight(4, {{3, 0, 100}});
  EXPECT_TRUE(tight.DelaysHead(4, 1, 101)) << "the head needs every slot at t=100";
  // An attempt without max_runtime may end any moment: then the head could
  // start at once, and a backfilled job would be in its way.
  Forecast unknown(4, {{3, 0, kNever}});
  EXPECT_TRUE(unknown.DelaysHead(4, 1, 10));
}

TEST(SchedulerMath, VictimsAreFewestLowest) {
  std::vector<Candidate> running = {{"a", 1, 2, 50}, {"b", 0, 1, 10}, {"c", 0, 1, 20}, {"d", 9, 4, 5}};
  auto v = ChooseVictims(running, 5, 2, 0);
  std::set<std::string> ids;
  for (auto& c : v) ids.insert(c.job_id);
  EXPECT_EQ(ids, (std::set<std::string>{"b", "c"})) << "priority 0 before priority 1; d outranks the job";
  // Needs 3: b, c and a free 4; then c is spared (b and a free 3).
  v = ChooseVictims(running, 5, 3, 0);
  ids.clear();
  for (auto& c : v) ids.insert(c.job_id);
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_TRUE(ids.count("a"));
  EXPECT_TRUE(ChooseVictims(running, 5, 5, 0).empty()) << "the lower ones free only 4";
  EXPECT_TRUE(ChooseVictims(running, 0, 1, 0).empty()) << "nothing has a lower priority than 0";
}

TEST(SchedulerMath, SlotMapPlacesGpusPerRankAndNeverTwice) {
  SlotMap m({{"a", 4, {0, 1}}, {"b", 2, {3}}});
  JobSpec two;
  two.resources.workers = 2;
  two.resources.device = "cuda";
  auto p = m.Place(two);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->GpuLists(), (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(p->Hosts(), (std::vector<std::string>{"a", "a"}));
  m.Take(*p);
  JobSpec one = two;
  one.resources.workers = 1;
  auto q = m.Place(one);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->Hosts(), (std::vector<std::string>{"b"}));
  EXPECT_EQ(q->GpuLists(), (std::vector<std::string>{"3"}));
  m.Take(*q);
  EXPECT_FALSE(m.Place(one)) << "every GPU is taken";
  EXPECT_EQ(m.Used(Pool::kGpu), 3);
  EXPECT_EQ(m.Used(Pool::kCpu), 0) << "GPU ranks take no CPU slot";
  m.Release(*p);
  EXPECT_EQ(m.Free(Pool::kGpu), 2);
  // A rank never spans hosts: 2 GPUs per rank fit on a only.
  JobSpec wide = one;
  wide.resources.slots_per_worker = 2;
  EXPECT_TRUE(m.CouldEverFit(wide));
  wide.resources.workers = 2;
  EXPECT_FALSE(m.CouldEverFit(wide)) << "b has one GPU";
  // Placement survives its JSON record (placement.json of an attempt).
  auto back = Placement::FromJson(p->ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->GpuLists(), p->GpuLists());
}

// ---- the coordinator ------------------------------------------------------

class SchedulingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path();
    testing::WriteStandInMnist(root_ / "data");
  }
  void TearDown() override { coord_.reset(); }
  // `config`: a cluster config (as YAML would give it).
  void Open(const json& config) {
    coord_.reset();
    auto cluster = ClusterConfig::Parse(config, /*detected_cpus=*/2, /*detected_gpus=*/0);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    CoordinatorOptions o;
    o.hosts = cluster->hosts;
    o.scheduler = cluster->scheduler;
    o.stop_grace = 5s;
    auto c = testing::OpenCoordinator(root_, o, launcher_, sink_, retention_, clock_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    coord_ = std::move(c).value();
  }
  void OpenSlots(int cpus, const json& scheduler = json::object()) {
    Open({{"hosts", {{{"name", "localhost"}, {"cpus", cpus}}}}, {"scheduler", scheduler}});
  }
  std::string Submit(int workers, int priority = 0, double max_runtime = 0, const std::string& device = "cpu") {
    json spec = {{"name", "job"},
                 {"priority", priority},
                 {"data", {{"path", (root_ / "data").string()}}},
                 {"resources", {{"workers", workers}, {"device", device}}},
                 {"train", {{"steps", 10}}},
                 {"restart", {{"hang_timeout_seconds", 0}}}};
    if (max_runtime > 0) spec["max_runtime"] = max_runtime;
    auto j = coord_->Submit(spec);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? j->id : "";
  }
  Job Get(const std::string& id) { return coord_->Describe(id)->job; }
  std::string State(const std::string& id) { return std::string(JobStateName(Get(id).state)); }
  // Seconds from now to the job's estimated start; -1 when unknown.
  double StartsIn(const std::string& id) {
    Job j = Get(id);
    return j.estimated_start > 0 ? j.estimated_start - clock_.WallSeconds() : -1;
  }
  const LaunchRequest* Started(const std::string& id) {
    for (const auto& r : launcher_.started) {
      if (r.job_id == id) return &r;
    }
    return nullptr;
  }

  gantry::testing::TempDir tmp_;
  std::filesystem::path root_;
  ManualClock clock_;
  FakeLauncher launcher_;
  RecordingSink sink_;
  FakeRetention retention_;
  std::unique_ptr<Coordinator> coord_;
};

TEST_F(SchedulingTest, GpuJobsGetTheirOwnDevicesFromTheConfig) {
  Open({{"hosts", {{{"name", "localhost"}, {"cpus", 2}, {"gpus", json::array({0, 1, 3})}}}}});
  std::string a = Submit(2, 0, 0, "cuda");
  std::string b = Submit(1, 0, 0, "cuda");
  ASSERT_EQ(State(a), "RUNNING");
  ASSERT_EQ(State(b), "RUNNING");
  EXPECT_EQ(Started(a)->gpus, (std::vector<std::string>{"0", "1"})) << "one GPU per rank";
  EXPECT_EQ(Started(b)->gpus, (std::vector<std::string>{"3"}));
  EXPECT_EQ(Started(a)->hosts, (std::vector<std::string>{"localhost", "localhost"}));
  EXPECT_EQ(Get(a).gpus, (std::vector<std::string>{"0", "1"}));
  // GPUs busy: a third GPU job waits and says for what; a CPU job still runs.
  std::string c = Submit(1, 0, 0, "cuda");
  EXPECT_EQ(State(c), "QUEUED");
  EXPECT_EQ(Get(c).reason.rfind("waiting for 1 gpu slot: needs 1, 0 of 3 free", 0), 0u) << Get(c).reason;
  std::string cpu = Submit(2);
  EXPECT_EQ(State(cpu), "RUNNING");
  EXPECT_TRUE(Started(cpu)->gpus.empty());
  ClusterView v = coord_->ClusterStatus();
  EXPECT_EQ(v.gpus_total, 3);
  EXPECT_EQ(v.gpus_used, 3);
  EXPECT_EQ(v.gpus_free, 0);
  EXPECT_EQ(v.slots_used, 2);
  ASSERT_EQ(v.hosts.size(), 1u);
  EXPECT_EQ(v.hosts[0].gpus_used, (std::vector<int>{0, 1, 3}));
  // b ends: c gets b's device, never one a holds.
  launcher_.Finish(b, ExitInfo{0, 0});
  coord_->Tick();
  ASSERT_EQ(State(c), "RUNNING");
  EXPECT_EQ(Started(c)->gpus, (std::vector<std::string>{"3"}));
}

TEST_F(SchedulingTest, GpuPlacementSurvivesACoordinatorRestart) {
  Open({{"hosts", {{{"name", "localhost"}, {"cpus", 2}, {"gpus", 2}}}}});
  std::string a = Submit(1, 0, 0, "cuda");
  ASSERT_EQ(Started(a)->gpus, (std::vector<std::string>{"0"}));
  launcher_.alive.insert(a);
  Open({{"hosts", {{{"name", "localhost"}, {"cpus", 2}, {"gpus", 2}}}}});  // re-adopts a from placement.json
  EXPECT_EQ(State(a), "RUNNING");
  EXPECT_EQ(coord_->gpus_used(), 1);
  std::string b = Submit(1, 0, 0, "cuda");
  EXPECT_EQ(Started(b)->gpus, (std::vector<std::string>{"1"})) << "device 0 is still a's";
}

TEST_F(SchedulingTest, CudaNeedsDeclaredGpusAndGangsMustFit) {
  OpenSlots(2);
  json spec = {{"name", "job"},
               {"data", {{"path", (root_ / "data").string()}}},
               {"resources", {{"workers", 1}, {"device", "cuda"}}},
               {"train", {{"steps", 10}}}};
  auto r = coord_->Submit(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("declares no GPU slots"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("hosts[].gpus"), std::string::npos) << r.status().message();
  Open({{"hosts", {{{"name", "localhost"}, {"cpus", 2}, {"gpus", 1}}}}});
  spec["resources"]["workers"] = 2;
  r = coord_->Submit(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("needs 2 gpu slots"), std::string::npos) << r.status().message();
}

TEST_F(SchedulingTest, BackfillsAJobThatEndsBeforeTheReservation) {
  OpenSlots(5);
  std::string a = Submit(3, 0, /*max_runtime=*/100);
  std::string head = Submit(5, 0, 10);
  EXPECT_EQ(State(head), "QUEUED");
  EXPECT_EQ(Get(head).reason, "waiting for 3 cpu slots: needs 5, 2 of 5 free");
  EXPECT_DOUBLE_EQ(StartsIn(head), 100) << "a ends by its max_runtime";
  std::string short_job = Submit(1, 0, 50);
  EXPECT_EQ(State(short_job), "RUNNING") << "ends at 50, before the reservation at 100";
  clock_.Advance(10s);
  coord_->Tick();
  std::string long_job = Submit(1, 0, 200);
  // One slot is free, but the long job would hold it when the head needs
  // every slot (at 90, when a ends).
  EXPECT_EQ(State(long_job), "QUEUED");
  EXPECT_EQ(Get(long_job).reason.rfind("behind job " + head + " (reservation", 0), 0u) << Get(long_job).reason;
  EXPECT_DOUBLE_EQ(StartsIn(long_job), 100) << "after the head's 10 s at 90..100";
  std::string unknown = Submit(1);
  EXPECT_EQ(State(unknown), "QUEUED");
  EXPECT_NE(Get(unknown).reason.find("declare max_runtime"), std::string::npos) << Get(unknown).reason;
  EXPECT_EQ(StartsIn(unknown), 100) << "its own runtime is unknown, but the slots are free from 100";
  // The reservation holds: when a ends, the head starts before the others.
  launcher_.Finish(short_job, ExitInfo{0, 0});
  launcher_.Finish(a, ExitInfo{0, 0});
  coord_->Tick();
  EXPECT_EQ(State(head), "RUNNING");
  EXPECT_EQ(State(long_job), "QUEUED");
}

TEST_F(SchedulingTest, BackfillsIntoSlotsTheHeadLeavesOver) {
  OpenSlots(4);
  std::string a = Submit(2, 0, 100);
  std::string head = Submit(3);
  EXPECT_EQ(State(head), "QUEUED");
  std::string extra = Submit(1);  // no max_runtime, but at 100 4 are free and the head needs 3
  EXPECT_EQ(State(extra), "RUNNING");
  std::string more = Submit(1);  // now the head needs every slot a frees
  EXPECT_EQ(State(more), "QUEUED");
  EXPECT_NE(Get(more).reason.find("behind job " + head), std::string::npos) << Get(more).reason;
}

TEST_F(SchedulingTest, NoBackfillWhileTheReservationHangsOnAJobWithoutMaxRuntime) {
  OpenSlots(4);
  std::string a = Submit(3);  // may end any moment
  std::string head = Submit(4);
  EXPECT_EQ(StartsIn(head), -1) << "no estimate without max_runtime";
  std::string tiny = Submit(1, 0, 10);
  EXPECT_EQ(State(tiny), "QUEUED") << "if a ended now the head would wait for it";
}

TEST_F(SchedulingTest, BackfillCanBeTurnedOff) {
  OpenSlots(4, {{"backfill", false}});
  Submit(3, 0, 100);
  std::string head = Submit(4);
  std::string short_job = Submit(1, 0, 10);
  EXPECT_EQ(State(short_job), "QUEUED");
  EXPECT_EQ(Get(short_job).reason, "behind job " + head + " (queue order; backfill is off)");
}

TEST_F(SchedulingTest, MaxRuntimeStopsTheAttemptAsTimeLimit) {
  OpenSlots(2);
  std::string id = Submit(1, 0, 60);
  clock_.Advance(59s);
  coord_->Tick();
  EXPECT_EQ(State(id), "RUNNING");
  clock_.Advance(2s);
  coord_->Tick();  // asks it to checkpoint and stop
  EXPECT_TRUE(launcher_.attempts.at(id)->preempt_requested);
  coord_->Tick();
  EXPECT_EQ(State(id), "FAILED");
  auto d = coord_->Describe(id);
  EXPECT_EQ(d->attempts.back().failure_class, "time_limit");
  EXPECT_NE(d->job.reason.find("max_runtime (60 s)"), std::string::npos) << d->job.reason;
  EXPECT_EQ(coord_->slots_used(), 0);
}

TEST_F(SchedulingTest, HigherPriorityPreemptsTheLowestAndTakesTheSlots) {
  OpenSlots(4, {{"preemption", true}, {"preempt_grace_seconds", 300}});
  std::string mid = Submit(2, /*priority=*/1);
  std::string low1 = Submit(1, 0);
  std::string low2 = Submit(1, 0);
  std::string high = Submit(2, 5);
  EXPECT_TRUE(launcher_.attempts.at(low1)->preempt_requested);
  EXPECT_TRUE(launcher_.attempts.at(low2)->preempt_requested);
  EXPECT_FALSE(launcher_.attempts.at(mid)->preempt_requested) << "priority 0 goes before priority 1";
  EXPECT_NE(Get(high).reason.find("preempting jobs"), std::string::npos) << Get(high).reason;
  EXPECT_NE(Get(high).reason.find(low1), std::string::npos) << Get(high).reason;
  EXPECT_GT(StartsIn(high), -1) << "the victims end within the stop grace";
  coord_->Tick();  // the victims checkpointed (exit 75): PREEMPTED, and high starts
  EXPECT_EQ(State(high), "RUNNING");
  EXPECT_EQ(State(mid), "RUNNING");
  for (const auto& v : {low1, low2}) {
    auto d = coord_->Describe(v);
    EXPECT_EQ(std::string(JobStateName(d->job.state)), "PREEMPTED");
    EXPECT_EQ(d->attempts.back().outcome, "preempted");
    EXPECT_EQ(d->job.restarts, 0) << "preemption uses up no restart";
    EXPECT_NE(d->attempts.back().message.find("preempted for job " + high), std::string::npos)
        << d->attempts.back().message;
    EXPECT_EQ(d->job.reason.rfind("waiting for 1 cpu slot", 0), 0u) << "and now waits like any job: " << d->job.reason;
  }
  // Requeued: they run again when the slots free up.
  launcher_.Finish(high, ExitInfo{0, 0});
  coord_->Tick();
  EXPECT_EQ(State(low1), "RUNNING");
  EXPECT_EQ(State(low2), "RUNNING");
  EXPECT_EQ(coord_->Describe(low1)->job.attempt, 2);
}

TEST_F(SchedulingTest, PreemptsOnlyLowerPriorityAndOnlyWhenThatIsEnough) {
  OpenSlots(2, {{"preemption", true}});
  std::string low = Submit(1, 0);
  std::string top = Submit(1, 9);
  std::string high = Submit(2, 5);
  EXPECT_FALSE(launcher_.attempts.at(low)->preempt_requested) << "low alone frees 1 of the 2 slots needed";
  EXPECT_FALSE(launcher_.attempts.at(top)->preempt_requested);
  EXPECT_EQ(Get(high).reason.rfind("waiting for 2 cpu slots", 0), 0u) << Get(high).reason;
}

TEST_F(SchedulingTest, AJobIsPreemptedAtMostOncePerGracePeriod) {
  OpenSlots(2, {{"preemption", true}, {"preempt_grace_seconds", 300}});
  std::string low = Submit(2, 0);
  std::string high = Submit(2, 5);
  coord_->Tick();
  ASSERT_EQ(State(high), "RUNNING");
  launcher_.Finish(high, ExitInfo{0, 0});
  coord_->Tick();
  ASSERT_EQ(State(low), "RUNNING");
  // Within the grace period low is left alone ...
  clock_.Advance(100s);
  std::string again = Submit(2, 5);
  EXPECT_FALSE(launcher_.attempts.at(low)->preempt_requested);
  EXPECT_EQ(State(again), "QUEUED");
  // ... and once it is over, preempted again.
  clock_.Advance(201s);
  coord_->Tick();
  EXPECT_TRUE(launcher_.attempts.at(low)->preempt_requested);
  coord_->Tick();
  EXPECT_EQ(State(again), "RUNNING");
}

TEST_F(SchedulingTest, AVictimThatIgnoresThePreemptionIsKilledAndStillRequeued) {
  OpenSlots(2, {{"preemption", true}});
  launcher_.exit_on_stop = false;
  std::string low = Submit(2, 0);
  std::string high = Submit(2, 5);
  ASSERT_TRUE(launcher_.attempts.at(low)->preempt_requested);
  clock_.Advance(6s);  // past stop_grace
  coord_->Tick();
  EXPECT_TRUE(launcher_.attempts.at(low)->killed);
  auto d = coord_->Describe(low);
  EXPECT_EQ(std::string(JobStateName(d->job.state)), "PREEMPTED");
  EXPECT_NE(d->attempts.back().message.find("without a checkpoint"), std::string::npos) << d->attempts.back().message;
  EXPECT_EQ(State(high), "RUNNING");
}

}  // namespace
}  // namespace gantry::coordinator
