// The coordinator's loop never waits on storage: retention policies are
// checked at submit and delivered by StorageRetention's own thread.
// One test runs a real gantry-storage process and SIGKILLs it.
#include "coordinator/retention.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "common/data_dir.h"
#include "common/process.h"
#include "coordinator/coordinator.h"
#include "tests/coordinator/fake_launcher.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

using testing::FakeLauncher;
using testing::RecordingSink;
using namespace std::chrono_literals;

// A synchronous set_retention would wait this long for a dead storage;
// the assertions below allow a small fraction of it.
constexpr auto kCallTimeout = 5s;
constexpr auto kBound = 500ms;

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(tmp_.path() + "/data");
    for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                          "t10k-labels-idx1-ubyte.gz"}) {
      std::ofstream(tmp_.path() + "/data/" + f) << "x";
    }
  }
  void TearDown() override {
    coord_.reset();
    retention_.reset();
  }
  void Start(const std::string& storage_endpoint) {
    StorageRetention::Options ro;
    ro.call_timeout = kCallTimeout;
    ro.retry_interval = 50ms;
    retention_ = std::make_unique<StorageRetention>(ctx_, storage_endpoint, ro);
    auto store = JobStore::Open(tmp_.path() + "/coordinator.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    CoordinatorOptions o;
    o.slots = 2;
    coord_ = std::make_unique<Coordinator>(o, DataDir(tmp_.path() + "/cluster"), std::move(store).value(),
                                           launcher_, sink_, *retention_, clock_);
    ASSERT_TRUE(coord_->Recover().ok());
  }
  json Spec(const std::string& model, int workers = 2) {
    return {{"name", model},
            {"data", {{"path", tmp_.path() + "/data"}}},
            {"resources", {{"workers", workers}}},
            {"train", {{"steps", 10}}},
            {"restart", {{"hang_timeout_seconds", 60}}},
            {"checkpoint", {{"model", model}, {"keep_latest", 2}}}};
  }
  // Submits and returns how long Submit took.
  std::chrono::milliseconds TimedSubmit(const json& spec, std::string* id) {
    auto t0 = std::chrono::steady_clock::now();
    auto job = coord_->Submit(spec);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    if (job.ok()) *id = job->id;
    return took;
  }
  // Scheduling and heartbeats while storage is gone: a job finishes, the
  // next one starts, and heartbeats are answered, each within kBound.
  void LoopCarriesOn(const std::string& running_id) {
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(coord_->Heartbeat(running_id, 1, 0, 5).ok());
    launcher_.Finish(running_id, ExitInfo{0, 0});
    coord_->Tick();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, kBound);
    EXPECT_EQ(coord_->Describe(running_id)->job.state, JobState::kSucceeded);
  }

  gantry::testing::TempDir tmp_;
  zmq::context_t ctx_;
  ManualClock clock_;
  FakeLauncher launcher_;
  RecordingSink sink_;
  std::unique_ptr<StorageRetention> retention_;
  std::unique_ptr<Coordinator> coord_;
};

TEST(RetentionCheckTest, RefusesWhatStorageWouldRefuse) {
  JobSpec spec;
  EXPECT_TRUE(CheckRetention(spec).ok()) << "no policy";
  EXPECT_TRUE(RetentionRequest(spec).is_null());
  spec.checkpoint.model = "m";
  spec.checkpoint.keep_best = 2;
  spec.checkpoint.best_metric = "";
  Status s = CheckRetention(spec);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("best_metric"), std::string::npos) << s.message();
  spec.checkpoint.best_metric = "bad\nname";
  EXPECT_FALSE(CheckRetention(spec).ok());
  spec.checkpoint.best_metric = "test_loss";
  EXPECT_TRUE(CheckRetention(spec).ok());
  EXPECT_EQ(RetentionRequest(spec)["keep_latest"], 1);
}

TEST_F(RetentionTest, StorageNobodyServesDoesNotStallTheLoop) {
  // Port 1 on loopback: nobody listens, ZeroMQ keeps trying to connect.
  Start("tcp://127.0.0.1:1");
  std::string a, b;
  EXPECT_LT(TimedSubmit(Spec("m1"), &a), kBound);
  EXPECT_LT(TimedSubmit(Spec("m2"), &b), kBound);
  EXPECT_EQ(coord_->Describe(a)->job.state, JobState::kRunning);
  EXPECT_EQ(coord_->Describe(b)->job.state, JobState::kQueued) << "waits for a's slots";
  LoopCarriesOn(a);
  EXPECT_EQ(coord_->Describe(b)->job.state, JobState::kRunning);
  EXPECT_EQ(retention_->pending(), 2u) << "still waiting for storage";
  EXPECT_EQ(retention_->delivered(), 0);
  // The destructor waits for at most the call in flight.
  auto t0 = std::chrono::steady_clock::now();
  retention_.reset();
  coord_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, kCallTimeout + 2s);
}

TEST_F(RetentionTest, KilledStorageProcessDelaysPoliciesNotJobs) {
  const std::string bin = gantry::testing::BinDir() + "/gantry-storage";
  if (!std::filesystem::exists(bin)) GTEST_SKIP() << "no " << bin;
  DataDir sdir(tmp_.path() + "/storage");
  ASSERT_TRUE(sdir.Ensure().ok());
  auto spawn = [&](const std::string& bind) {
    SpawnOptions so;
    so.argv = {bin, "--data-dir", sdir.root(), "--bind", bind, "--log-level", "warn"};
    so.stdout_path = tmp_.path() + "/storage.out";
    auto child = ChildProcess::Spawn(so);
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    return std::move(child).value();
  };
  auto endpoint_of = [&](const ChildProcess& c) -> std::string {
    std::string ep;
    gantry::testing::WaitFor([&] {
      auto info = sdir.ReadServiceInfo(kStorage);
      if (!info.ok() || info->pid != c.pid()) return false;
      ep = info->endpoints.at("api");
      return true;
    }, 20s);
    return ep;
  };
  ChildProcess storage = spawn("tcp://127.0.0.1:0");
  const std::string endpoint = endpoint_of(storage);
  ASSERT_FALSE(endpoint.empty()) << "gantry-storage did not start";
  Start(endpoint);

  std::string a;
  EXPECT_LT(TimedSubmit(Spec("m1"), &a), kBound);
  ASSERT_TRUE(gantry::testing::WaitFor([&] { return retention_->delivered() == 1; }, 20s))
      << "the policy reaches a running storage";

  storage.Signal(SIGKILL);
  storage.Wait();
  std::string b;
  EXPECT_LT(TimedSubmit(Spec("m2"), &b), kBound) << "submit does not wait for the dead storage";
  EXPECT_EQ(coord_->Describe(b)->job.state, JobState::kQueued) << "waits for a's slots";
  LoopCarriesOn(a);
  EXPECT_EQ(coord_->Describe(b)->job.state, JobState::kRunning);
  EXPECT_EQ(retention_->pending(), 1u);

  // Storage comes back on the same address: the queued policy arrives.
  std::filesystem::remove(sdir.RunFile(kStorage));
  ChildProcess again = spawn(endpoint);
  ASSERT_FALSE(endpoint_of(again).empty());
  EXPECT_TRUE(gantry::testing::WaitFor([&] { return retention_->delivered() == 2; }, 30s))
      << "pending " << retention_->pending() << ", refused " << retention_->refused();
  EXPECT_EQ(retention_->refused(), 0);
  again.Terminate(5s);
}

}  // namespace
}  // namespace gantry::coordinator
