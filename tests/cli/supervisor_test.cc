// The supervisor's restart policy, driven by a fake starter and a
// ManualClock: backoff, restart counts, clean stops, crash loops, Reset.
#include "cli/supervisor.h"

#include <gtest/gtest.h>

#include <map>

namespace gantry::cli {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class FakeStarter final : public ProcessStarter {
 public:
  Result<pid_t> Start(const std::string& service) override {
    starts[service]++;
    if (fail_starts[service] > 0) {
      fail_starts[service]--;
      return Status::Unavailable(service + " did not start");
    }
    return next_pid++;
  }
  std::optional<ExitInfo> Poll(const std::string& service) override {
    auto it = exits.find(service);
    if (it == exits.end()) return std::nullopt;
    ExitInfo e = it->second;
    exits.erase(it);
    return e;
  }
  void Kill(const std::string& service, int sig = 9) { exits[service] = ExitInfo(-1, sig); }

  std::map<std::string, int> starts;
  std::map<std::string, int> fail_starts;
  std::map<std::string, ExitInfo> exits;
  pid_t next_pid = 100;
};

class SupervisorTest : public ::testing::Test {
 protected:
  SupervisorTest() : sup_(clock_, starter_, Policy(), {"storage", "monitor", "coordinator"}) {}
  static SupervisorPolicy Policy() {
    SupervisorPolicy p;
    p.initial_backoff = milliseconds(500);
    p.max_backoff = seconds(8);
    p.max_restarts = 5;
    p.window = seconds(60);
    p.stable_after = seconds(60);
    return p;
  }
  const ServiceRecord& R(const std::string& s) { return *sup_.Find(s); }

  ManualClock clock_;
  FakeStarter starter_;
  Supervisor sup_;
};

TEST_F(SupervisorTest, StartsOnlyWhatIsNotRunning) {
  sup_.Adopt("storage", 42);
  ASSERT_TRUE(sup_.StartPending().ok());
  EXPECT_EQ(starter_.starts["storage"], 0);
  EXPECT_EQ(starter_.starts["monitor"], 1);
  EXPECT_EQ(starter_.starts["coordinator"], 1);
  EXPECT_EQ(R("storage").pid, 42);
  EXPECT_TRUE(R("storage").adopted);
  EXPECT_EQ(R("monitor").state, ServiceState::kRunning);
  EXPECT_EQ(R("monitor").restarts, 0);
}

TEST_F(SupervisorTest, FirstStartFailureStopsTheSequence) {
  starter_.fail_starts["monitor"] = 1;
  Status s = sup_.StartPending();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("monitor did not start"), std::string::npos);
  EXPECT_EQ(starter_.starts["coordinator"], 0);
}

TEST_F(SupervisorTest, RestartsAKilledServiceAfterTheBackoff) {
  ASSERT_TRUE(sup_.StartPending().ok());
  starter_.Kill("monitor");
  EXPECT_TRUE(sup_.Tick());
  EXPECT_EQ(R("monitor").state, ServiceState::kBackoff);
  ASSERT_TRUE(R("monitor").last_exit.has_value());
  EXPECT_EQ(R("monitor").last_exit->signal, 9);
  EXPECT_EQ(starter_.starts["monitor"], 1);
  clock_.Advance(milliseconds(499));
  EXPECT_FALSE(sup_.Tick());
  EXPECT_EQ(starter_.starts["monitor"], 1);
  clock_.Advance(milliseconds(1));
  EXPECT_TRUE(sup_.Tick());
  EXPECT_EQ(starter_.starts["monitor"], 2);
  EXPECT_EQ(R("monitor").state, ServiceState::kRunning);
  EXPECT_EQ(R("monitor").restarts, 1);
  EXPECT_EQ(R("storage").restarts, 0);
}

TEST_F(SupervisorTest, BackoffDoublesAndIsCapped) {
  ASSERT_TRUE(sup_.StartPending().ok());
  std::vector<int64_t> waits;
  for (int i = 0; i < 5; ++i) {
    starter_.Kill("storage");
    sup_.Tick();
    ASSERT_EQ(R("storage").state, ServiceState::kBackoff);
    waits.push_back(std::chrono::duration_cast<milliseconds>(R("storage").next_start - clock_.Now()).count());
    clock_.Advance(R("storage").next_start - clock_.Now());
    sup_.Tick();
    ASSERT_EQ(R("storage").state, ServiceState::kRunning);
    clock_.Advance(seconds(20));  // each run is short of stable_after, so failures accumulate
  }
  EXPECT_EQ(waits, (std::vector<int64_t>{500, 1000, 2000, 4000, 8000}));
}

TEST_F(SupervisorTest, CleanExitIsNotRestarted) {
  ASSERT_TRUE(sup_.StartPending().ok());
  starter_.exits["coordinator"] = ExitInfo(0, 0);
  sup_.Tick();
  EXPECT_EQ(R("coordinator").state, ServiceState::kStopped);
  clock_.Advance(seconds(100));
  sup_.Tick();
  EXPECT_EQ(starter_.starts["coordinator"], 1);
  EXPECT_FALSE(sup_.AllStopped());
  starter_.exits["storage"] = ExitInfo(0, 0);
  starter_.exits["monitor"] = ExitInfo(0, 0);
  sup_.Tick();
  EXPECT_TRUE(sup_.AllStopped());
}

TEST_F(SupervisorTest, CrashLoopIsReportedAndNotRestartedForever) {
  ASSERT_TRUE(sup_.StartPending().ok());
  for (int i = 0; i < 5; ++i) {
    starter_.exits["monitor"] = ExitInfo(3, 0);
    sup_.Tick();
    clock_.Advance(R("monitor").next_start - clock_.Now());
    sup_.Tick();
    ASSERT_EQ(R("monitor").state, ServiceState::kRunning) << i;
  }
  EXPECT_EQ(R("monitor").restarts, 5);
  starter_.exits["monitor"] = ExitInfo(3, 0);
  sup_.Tick();
  EXPECT_EQ(R("monitor").state, ServiceState::kCrashLoop);
  EXPECT_EQ(R("monitor").last_exit->exit_code, 3);
  clock_.Advance(seconds(3600));
  sup_.Tick();
  EXPECT_EQ(R("monitor").state, ServiceState::kCrashLoop);
  EXPECT_EQ(starter_.starts["monitor"], 6);
  // `gantry up` (SIGHUP) gives it another chance.
  sup_.Reset();
  sup_.Tick();
  EXPECT_EQ(R("monitor").state, ServiceState::kRunning);
  EXPECT_EQ(starter_.starts["monitor"], 7);
}

TEST_F(SupervisorTest, RestartsSpreadOverTimeAreNotACrashLoop) {
  ASSERT_TRUE(sup_.StartPending().ok());
  for (int i = 0; i < 20; ++i) {
    clock_.Advance(seconds(61));  // each run was stable
    starter_.Kill("coordinator");
    sup_.Tick();
    ASSERT_EQ(R("coordinator").state, ServiceState::kBackoff) << i;
    EXPECT_EQ(R("coordinator").next_start - clock_.Now(), milliseconds(500));  // backoff reset by a stable run
    clock_.Advance(milliseconds(500));
    sup_.Tick();
  }
  EXPECT_EQ(R("coordinator").restarts, 20);
  EXPECT_EQ(R("coordinator").state, ServiceState::kRunning);
}

TEST_F(SupervisorTest, FailedRestartsCountTowardsTheCrashLoop) {
  ASSERT_TRUE(sup_.StartPending().ok());
  starter_.fail_starts["storage"] = 100;
  starter_.Kill("storage");
  sup_.Tick();
  for (int i = 0; i < 10 && R("storage").state == ServiceState::kBackoff; ++i) {
    clock_.Advance(R("storage").next_start - clock_.Now());
    sup_.Tick();
  }
  EXPECT_EQ(R("storage").state, ServiceState::kCrashLoop);
  EXPECT_EQ(starter_.starts["storage"], 1 + 5);
  EXPECT_EQ(R("storage").restarts, 0);
  EXPECT_NE(R("storage").last_error.find("did not start"), std::string::npos);
}

TEST_F(SupervisorTest, AdoptedServiceThatDiesIsRestarted) {
  sup_.Adopt("storage", 42);
  ASSERT_TRUE(sup_.StartPending().ok());
  starter_.exits["storage"] = ExitInfo{};  // not our child: exit unknown
  sup_.Tick();
  EXPECT_EQ(R("storage").state, ServiceState::kBackoff);
  clock_.Advance(seconds(1));
  sup_.Tick();
  EXPECT_EQ(R("storage").state, ServiceState::kRunning);
  EXPECT_FALSE(R("storage").adopted);
  EXPECT_EQ(R("storage").restarts, 1);
}

}  // namespace
}  // namespace gantry::cli
