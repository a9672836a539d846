// Exact resume and preemption with real gantry-worker processes under
// mpirun: SIGKILL mid-training then resume (same and different world size),
// and SIGTERM / SIGUSR1 making every rank checkpoint and exit 75.
#include <dirent.h>

#include "tests/support/test_support.h"
#include "tests/worker/fake_storage.h"
#include "tests/worker/process_util.h"
#include "worker/cli_options.h"

namespace gantry::worker {
namespace {

// Direct children of `parent` (the ranks mpirun forked; each has its own
// process group, so a signal to mpirun's group does not reach them).
std::vector<pid_t> ChildPids(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string stat = Slurp("/proc/" + std::string(e->d_name) + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    long ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

class ResumeProcessTest : public WorkerProcessTest {
 protected:
  void SetUp() override {
    WorkerProcessTest::SetUp();
    if (mpirun_.empty()) GTEST_SKIP() << "mpirun not found on PATH (install openmpi-bin)";
    spec_ = WriteSpec({{"train", {{"steps", 40}, {"log_every", 5}, {"optimizer", {{"name", "adam"}, {"lr", 0.01}}}}},
                       {"checkpoint", {{"every_steps", 10}}}});
  }

  std::vector<std::string> Argv(int np, const std::string& job, int attempt, const std::string& storage) {
    auto argv = Mpirun(np);
    for (const std::string& a : {worker_, std::string("--job-id"), job, std::string("--attempt"),
                                 std::to_string(attempt), std::string("--spec"), spec_, std::string("--storage"),
                                 storage, std::string("--monitor"), monitor_, std::string("--log-dir"),
                                 dir_.File("logs-" + job + "-" + std::to_string(attempt))}) {
      argv.push_back(a);
    }
    return argv;
  }

  std::string RankLog(const std::string& job, int attempt, int rank) {
    return Slurp(dir_.File("logs-" + job + "-" + std::to_string(attempt) + "/rank-" + std::to_string(rank) + ".log"));
  }

  void StartMonitor() {
    pull_.set(zmq::sockopt::linger, 0);
    pull_.bind("tcp://127.0.0.1:*");
    monitor_ = pull_.get(zmq::sockopt::last_endpoint);
  }

  std::string spec_;
  std::string monitor_;
  zmq::socket_t pull_{ctx_, zmq::socket_type::router};
};

// Acceptance: kill every rank (SIGKILL) after the step-20 checkpoint, resume
// with the same world size: final parameters equal an uninterrupted run's,
// bit for bit. Then resume the same checkpoints with 1 rank instead of 2.
TEST_F(ResumeProcessTest, SigkillThenResumeIsBitIdenticalAndOneRankContinuesAtTheSameSample) {
  testing::FakeStorageServer ref(ctx_);
  ExitInfo e = RunToEnd(Argv(2, "j-ref", 1, ref.endpoint()), nullptr);
  ASSERT_TRUE(e.ok()) << e.ToString() << RankLog("j-ref", 1, 0);
  ASSERT_EQ(ref.registry.size(), 4u);  // 10, 20, 30, final 40
  auto want = testing::Params(ref.registry.bodies().back());

  // Attempt 1: the step-30 save never commits; kill the ranks while it hangs.
  testing::FakeStorageServer store(ctx_);
  store.HoldSaveOf(30);
  ChildProcess launcher = Start(Argv(2, "j-kill", 1, store.endpoint()));
  ASSERT_TRUE(store.WaitHeld(std::chrono::seconds(60))) << RankLog("j-kill", 1, 0);
  auto ranks = ChildPids(launcher.pid());
  ASSERT_EQ(ranks.size(), 2u);
  for (pid_t p : ranks) ASSERT_EQ(::kill(p, SIGKILL), 0);
  ExitInfo killed = WaitEnd(launcher, nullptr, std::chrono::seconds(30));
  EXPECT_FALSE(killed.ok());
  store.Release();
  ASSERT_EQ(store.registry.size(), 2u);  // steps 10 and 20
  const std::vector<json> after_kill = store.registry.bodies();

  // Attempt 2, same world size: resumes from v2 (step 20).
  e = RunToEnd(Argv(2, "j-kill", 2, store.endpoint()), nullptr);
  ASSERT_TRUE(e.ok()) << e.ToString() << RankLog("j-kill", 2, 0);
  EXPECT_NE(RankLog("j-kill", 2, 1).find("resuming from tiny-model@v2"), std::string::npos);
  const json last = store.registry.bodies().back();
  EXPECT_EQ(last["step"], 40);
  EXPECT_EQ(last["attempt"], 2);
  EXPECT_EQ(last["parent_version"], 2);
  auto got = testing::Params(last);
  ASSERT_EQ(got.size(), want.size());
  for (auto& [name, t] : want) EXPECT_TRUE(torch::equal(t, got[name])) << name << " differs after resume";

  // Attempt 2 with one rank instead of two, from the same step-20 checkpoint.
  testing::FakeStorageServer one(ctx_);
  for (const json& b : after_kill) one.registry.Add(b);
  e = RunToEnd(Argv(1, "j-kill", 2, one.endpoint()), nullptr);
  ASSERT_TRUE(e.ok()) << e.ToString() << RankLog("j-kill", 2, 0);
  const json saved = after_kill.back()["trainer_state"];
  const json now = one.registry.bodies().back()["trainer_state"];
  // 512 samples, 2 x 16 per step: 16 steps per epoch, so step 20 is epoch 1
  // at sample 128. One rank takes 16 per step: 20 more steps end at 448.
  EXPECT_EQ(saved["epoch"], 1);
  EXPECT_EQ(saved["epoch_offset"], 4 * 32);
  EXPECT_EQ(now["step"], 40);
  EXPECT_EQ(now["world_size"], 1);
  EXPECT_EQ(now["epoch"], 1);
  EXPECT_EQ(now["epoch_offset"], 4 * 32 + 20 * 16);
  EXPECT_EQ(now["samples_seen"], 20 * 32 + 20 * 16);
}

// Acceptance: SIGTERM to one rank only; both agree on a step, the job
// checkpoints (preempted) and every rank exits 75, which mpirun passes on.
TEST_F(ResumeProcessTest, SigtermMakesRanksAgreeCheckpointAndExit75) {
  spec_ = WriteSpec({{"train", {{"steps", 100000}, {"log_every", 2}}}, {"checkpoint", {{"every_steps", 0}}}});
  StartMonitor();
  testing::FakeStorageServer store(ctx_);
  ChildProcess launcher = Start(Argv(2, "j-term", 1, store.endpoint()));
  // Wait until training runs: a metrics point past step 2.
  ASSERT_TRUE(gantry::testing::WaitFor(
      [&] {
        Drain(&pull_, std::chrono::milliseconds(20));
        return !metrics_.empty() && metrics_.back()["body"]["step"].get<int64_t>() >= 4;
      },
      std::chrono::seconds(60)));
  auto ranks = ChildPids(launcher.pid());
  ASSERT_EQ(ranks.size(), 2u);
  ASSERT_EQ(::kill(ranks[1], SIGTERM), 0);
  ExitInfo e = WaitEnd(launcher, &pull_, std::chrono::seconds(60));
  EXPECT_EQ(e.exit_code, kExitPreempted) << e.ToString() << RankLog("j-term", 1, 0);
  ASSERT_EQ(store.registry.size(), 1u);
  const json saved = store.registry.bodies().back();
  EXPECT_EQ(saved["trainer_state"]["preempted"], true);
  const int64_t step = saved["step"];
  EXPECT_LT(step, 100000);
  const std::string agreed = "all ranks stop after step " + std::to_string(step);
  EXPECT_NE(RankLog("j-term", 1, 0).find(agreed), std::string::npos) << RankLog("j-term", 1, 0);
  EXPECT_NE(RankLog("j-term", 1, 1).find(agreed), std::string::npos) << RankLog("j-term", 1, 1);
}

// The launcher's graceful path: SIGUSR1 to mpirun reaches every rank.
TEST_F(ResumeProcessTest, SigusrToMpirunPreemptsTheJob) {
  spec_ = WriteSpec({{"train", {{"steps", 100000}, {"log_every", 2}}}, {"checkpoint", {{"every_steps", 0}}}});
  StartMonitor();
  testing::FakeStorageServer store(ctx_);
  ChildProcess launcher = Start(Argv(2, "j-usr", 1, store.endpoint()));
  ASSERT_TRUE(gantry::testing::WaitFor(
      [&] {
        Drain(&pull_, std::chrono::milliseconds(20));
        return !metrics_.empty();
      },
      std::chrono::seconds(60)));
  ASSERT_EQ(::kill(launcher.pid(), SIGUSR1), 0);
  ExitInfo e = WaitEnd(launcher, &pull_, std::chrono::seconds(60));
  EXPECT_EQ(e.exit_code, kExitPreempted) << e.ToString() << RankLog("j-usr", 1, 0);
  ASSERT_EQ(store.registry.size(), 1u);
  EXPECT_EQ(store.registry.bodies().back()["trainer_state"]["preempted"], true);
}

}  // namespace
}  // namespace gantry::worker
