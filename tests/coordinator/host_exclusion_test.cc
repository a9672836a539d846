// A host whose loss ended an attempt (failure class node_lost, the hosts
// launcher's ExitInfo::lost_hosts) is kept off that job's next attempts:
// the restart runs on the remaining capacity, or waits for it with a reason
// that names the host, until the exclusion expires. Fake launcher, manual
// clock.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "common/cluster_config.h"
#include "coordinator/coordinator.h"
#include "coordinator/host_exclusions.h"
#include "coordinator/scheduler.h"
#include "tests/coordinator/fake_launcher.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

using namespace std::chrono_literals;

TEST(HostExclusionMath, PlaceSkipsExcludedHosts) {
  SlotMap m({{"h2", 1, {}}, {"h1", 2, {}}});
  JobSpec two;
  two.resources.workers = 2;
  auto p = m.Place(two);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->Hosts(), (std::vector<std::string>{"h2", "h1"})) << "first fit, in config order";
  p = m.Place(two, {"h2"});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->Hosts(), (std::vector<std::string>{"h1", "h1"}));
  EXPECT_FALSE(m.Place(two, {"h1"})) << "h2 alone has 1 slot";
  EXPECT_FALSE(m.CouldEverFit(two, {"h1"}));
  EXPECT_TRUE(m.CouldEverFit(two, {"h2"}));
  EXPECT_EQ(m.TotalExcept(Pool::kCpu, {"h1"}), 1);
}

TEST(HostExclusionMath, ExclusionsExpireAndAreForgotten) {
  ManualClock clock;
  HostExclusions ex(60s, clock);
  EXPECT_EQ(ex.Exclude("j", {}, 1, "node_lost"), "") << "nothing lost, nothing excluded";
  std::string note = ex.Exclude("j", {"h2"}, 1, "node_lost");
  EXPECT_EQ(note.rfind("; host h2 excluded from the job's next attempts until ", 0), 0u) << note;
  EXPECT_EQ(ex.Of("j"), (std::set<std::string>{"h2"}));
  EXPECT_TRUE(ex.Of("other").empty()) << "only the job that lost it";
  clock.Advance(59s);
  EXPECT_EQ(ex.Of("j").size(), 1u);
  clock.Advance(1s);
  EXPECT_TRUE(ex.Of("j").empty()) << "expired after 60 s";
  ex.Exclude("j", {"h1", "h2"}, 2, "node_unreachable");
  ex.Forget("j");
  EXPECT_TRUE(ex.Of("j").empty());
}

class HostExclusionTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::WriteStandInMnist(root() / "data"); }
  void TearDown() override { coord_.reset(); }
  // hosts: name -> cpus, in this order.
  void Open(const std::vector<std::pair<std::string, int>>& hosts) {
    json list = json::array();
    for (const auto& [name, cpus] : hosts) list.push_back({{"name", name}, {"cpus", cpus}});
    auto cluster = ClusterConfig::Parse({{"launcher", {{"kind", "hosts"}}}, {"hosts", list}}, 2, 0);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    CoordinatorOptions o;
    o.hosts = cluster->hosts;
    o.host_exclusion = 600s;
    auto c = testing::OpenCoordinator(root(), o, launcher_, sink_, retention_, clock_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    coord_ = std::move(c).value();
  }
  std::string Submit(int workers, int max_restarts = 2) {
    json spec = {{"name", "job"},
                 {"data", {{"path", (root() / "data").string()}}},
                 {"resources", {{"workers", workers}}},
                 {"train", {{"steps", 10}}},
                 {"restart", {{"max_restarts", max_restarts}, {"backoff_seconds", 0}, {"hang_timeout_seconds", 0}}}};
    auto j = coord_->Submit(spec);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? j->id : "";
  }
  JobView View(const std::string& id) { return *coord_->Describe(id); }
  std::string State(const std::string& id) { return std::string(JobStateName(View(id).job.state)); }
  // The hosts of the job's latest launch.
  std::vector<std::string> Hosts(const std::string& id) {
    for (auto it = launcher_.started.rbegin(); it != launcher_.started.rend(); ++it) {
      if (it->job_id == id) return it->hosts;
    }
    return {};
  }
  int Launches(const std::string& id) {
    int n = 0;
    for (const auto& r : launcher_.started) n += r.job_id == id;
    return n;
  }
  // The attempt of `id` ends as the hosts launcher reports a lost host.
  void LoseHost(const std::string& id, const std::string& host) {
    ExitInfo e{205, 0};
    e.failure_class = "node_lost";
    e.detail = "mpirun lost host " + host;
    e.lost_hosts = {host};
    launcher_.Finish(id, e);
    coord_->Tick();
  }

  std::filesystem::path root() const { return tmp_.path(); }

  gantry::testing::TempDir tmp_;
  ManualClock clock_;
  testing::FakeLauncher launcher_;
  testing::RecordingSink sink_;
  testing::FakeRetention retention_;
  std::unique_ptr<Coordinator> coord_;
};

TEST_F(HostExclusionTest, TheRestartRunsOnTheRemainingHosts) {
  Open({{"h2", 1}, {"h1", 2}});
  std::string a = Submit(2);
  ASSERT_EQ(State(a), "RUNNING");
  ASSERT_EQ(Hosts(a), (std::vector<std::string>{"h2", "h1"}));
  LoseHost(a, "h2");
  JobView v = View(a);
  ASSERT_EQ(v.attempts.size(), 2u) << v.job.reason;
  EXPECT_EQ(v.attempts[0].failure_class, "node_lost");
  EXPECT_NE(v.attempts[0].message.find("mpirun lost host h2"), std::string::npos) << v.attempts[0].message;
  EXPECT_NE(v.attempts[0].message.find("host h2 excluded from the job's next attempts"), std::string::npos)
      << v.attempts[0].message;
  EXPECT_EQ(State(a), "RUNNING");
  EXPECT_EQ(Hosts(a), (std::vector<std::string>{"h1", "h1"})) << "both ranks on the host that is left";
  EXPECT_EQ(v.job.restarts, 1);
  // Another job may still use h2: the exclusion is the failed job's own.
  std::string b = Submit(1);
  EXPECT_EQ(State(b), "RUNNING");
  EXPECT_EQ(Hosts(b), (std::vector<std::string>{"h2"}));
}

TEST_F(HostExclusionTest, WaitsWithAReasonWhenTheRestIsTooSmallUntilTheExclusionExpires) {
  Open({{"h2", 1}, {"h1", 1}});
  std::string a = Submit(2);
  ASSERT_EQ(Hosts(a), (std::vector<std::string>{"h2", "h1"}));
  LoseHost(a, "h2");
  EXPECT_EQ(State(a), "RESTARTING");
  EXPECT_EQ(Launches(a), 1) << "no second attempt without h2";
  const std::string reason = View(a).job.reason;
  EXPECT_EQ(reason.rfind("waiting: host h2 excluded after node lost in attempt 1; needs 2 cpu slots, the other "
                         "hosts have 1 (h2 is tried again at ",
                         0),
            0u)
      << reason;
  clock_.Advance(599s);
  coord_->Tick();
  EXPECT_EQ(Launches(a), 1);
  EXPECT_EQ(View(a).job.reason, reason) << "a stable reason (it is stored when it changes)";
  clock_.Advance(1s);
  coord_->Tick();
  EXPECT_EQ(State(a), "RUNNING");
  EXPECT_EQ(Launches(a), 2);
  EXPECT_EQ(Hosts(a), (std::vector<std::string>{"h2", "h1"})) << "h2 is tried again after the exclusion";
}

TEST_F(HostExclusionTest, WaitsForBusySlotsOnTheOtherHosts) {
  Open({{"h2", 1}, {"h1", 2}});
  std::string c = Submit(2);
  ASSERT_EQ(Hosts(c), (std::vector<std::string>{"h2", "h1"}));
  std::string busy = Submit(1);
  ASSERT_EQ(Hosts(busy), (std::vector<std::string>{"h1"}));
  LoseHost(c, "h2");
  EXPECT_EQ(State(c), "RESTARTING");
  EXPECT_EQ(View(c).job.reason,
            "waiting: host h2 excluded after node lost in attempt 1; needs 2 cpu slots, 1 of 2 free on the other "
            "hosts");
  launcher_.Finish(busy, ExitInfo{0, 0});
  coord_->Tick();
  EXPECT_EQ(State(c), "RUNNING");
  EXPECT_EQ(Hosts(c), (std::vector<std::string>{"h1", "h1"}));
}

TEST_F(HostExclusionTest, AnUnreachableHostIsKeptOffToo) {
  Open({{"h2", 1}, {"h1", 1}});
  std::string a = Submit(2);
  ExitInfo e{255, 0};
  e.failure_class = "node_unreachable";
  e.lost_hosts = {"h1"};
  launcher_.Finish(a, e);
  coord_->Tick();
  EXPECT_EQ(Launches(a), 1);
  const std::string reason = View(a).job.reason;
  EXPECT_EQ(reason.rfind("waiting: host h1 excluded after node unreachable in attempt 1; needs 2 cpu slots", 0), 0u)
      << reason;
}

TEST_F(HostExclusionTest, OtherFailuresExcludeNothing) {
  Open({{"h2", 1}, {"h1", 2}});
  std::string a = Submit(2);
  launcher_.Finish(a, ExitInfo{1, 0});
  coord_->Tick();
  EXPECT_EQ(Hosts(a), (std::vector<std::string>{"h2", "h1"})) << "an exit code says nothing about the host";
  EXPECT_EQ(View(a).attempts[0].failure_class, "exit_code");
}

}  // namespace
}  // namespace gantry::coordinator
