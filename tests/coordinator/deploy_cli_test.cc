// `gantry deploy / deployments / undeploy` run in process (cli::RunCli)
// against the coordinator's deployment handlers served from a thread of this
// test, which start the stand-in gantry-serve (fake_serve.py) for real. No
// storage runs: deploy then skips its registry check, as documented.
#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <thread>

#include "cli/app.h"
#include "common/data_dir.h"
#include "common/process.h"
#include "common/rpc.h"
#include "coordinator/deployment_service.h"
#include "coordinator/deployments.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

using gantry::testing::TempDir;
using gantry::testing::WaitFor;

struct Output {
  int code = 0;
  std::string out, err;
};

class DeployCliTest : public ::testing::Test {
 protected:
  DeployCliTest() : dir_(tmp_.path()), launcher_({"mpirun", "/nonexistent/gantry-worker", {}}), server_(ctx_, {}) {}

  void SetUp() override {
    ::unsetenv("GANTRY_DATA_DIR");
    // The server thread's log lines would mix into the CLI's captured stdout.
    spdlog::set_level(spdlog::level::off);
    ASSERT_TRUE(dir_.Ensure().ok());
    DeploymentsOptions o;
    o.serve_binary = std::string(GANTRY_TEST_SOURCE_DIR) + "/tests/coordinator/fake_serve.py";
    o.storage_endpoint = "tcp://127.0.0.1:1";
    o.data_dir = dir_.root();
    o.policy.stop_grace = std::chrono::milliseconds(3000);
    auto store = DeploymentStore::Open(dir_.Path("coordinator.db"));
    ASSERT_TRUE(store.ok());
    deployments_ = std::make_unique<Deployments>(o, std::move(store).value(), launcher_, clock_);
    ASSERT_TRUE(server_.Bind().ok());
    RegisterDeploymentHandlers(server_, *deployments_);
    server_.OnTick([this] { deployments_->Tick(); });
    ASSERT_TRUE(dir_.WriteServiceInfo({kCoordinator, ::getpid(), {{"api", server_.endpoint()}}}).ok());
    thread_ = std::thread([this] { (void)server_.Serve(); });
  }
  void TearDown() override {
    server_.Stop();
    if (thread_.joinable()) thread_.join();
    deployments_.reset();  // kills what still runs
    spdlog::set_level(spdlog::level::info);
  }

  Output Gantry(std::vector<std::string> args) {
    args.insert(args.begin(), {"gantry", "--data-dir", dir_.root()});
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    Output o;
    o.code = cli::RunCli(args);
    std::fflush(stdout);
    o.out = ::testing::internal::GetCapturedStdout();
    o.err = ::testing::internal::GetCapturedStderr();
    return o;
  }

  json List() {
    Output o = Gantry({"deployments", "--json", "--rate-window", "0"});
    EXPECT_EQ(o.code, 0) << o.err;
    return json::parse(o.out)["deployments"];
  }

  TempDir tmp_;
  DataDir dir_;
  SystemClock clock_;
  LocalMpiLauncher launcher_;
  zmq::context_t ctx_;
  RpcServer server_;
  std::unique_ptr<Deployments> deployments_;
  std::thread thread_;
};

TEST_F(DeployCliTest, DeployListKillAndUndeploy) {
  Output bad = Gantry({"deploy", "mnist@v2", "--max-batch", "0"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("max_batch must be 1..4096 (got 0)"), std::string::npos) << bad.err;

  Output dep = Gantry({"deploy", "mnist@v2", "--max-batch", "32", "--timeout", "20"});
  ASSERT_EQ(dep.code, 0) << dep.err;
  EXPECT_NE(dep.out.find("deployment mnist: serving mnist@v2 (mnist:2) at http://127.0.0.1:"), std::string::npos)
      << dep.out;

  json list = List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["health"], "ready");
  EXPECT_EQ(list[0]["live_version"], "mnist:2");
  EXPECT_EQ(list[0]["max_batch"], 32);
  int pid = list[0]["pid"];
  Output table = Gantry({"deployments", "--rate-window", "0.2"});
  EXPECT_NE(table.out.find("SERVING  ready"), std::string::npos) << table.out;

  // kill -9: `gantry deployments` shows it ready again, by a new process.
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        json l = List();
        return l[0]["health"] == "ready" && l[0]["pid"] != pid;
      },
      std::chrono::seconds(5)));
  EXPECT_EQ(List()[0]["restarts"], 1);

  int pgid = List()[0]["pgid"];
  Output gone = Gantry({"undeploy", "mnist"});
  ASSERT_EQ(gone.code, 0) << gone.err;
  EXPECT_EQ(gone.out, "undeployed mnist\n");
  EXPECT_FALSE(GroupAlive(pgid));
  EXPECT_NE(Gantry({"deployments"}).out.find("no deployments"), std::string::npos);
  Output again = Gantry({"undeploy", "mnist"});
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("no deployment mnist"), std::string::npos) << again.err;
}

TEST_F(DeployCliTest, DeploymentsToleratesAServerThatDoesNotAnswer) {
  ASSERT_EQ(Gantry({"deploy", "mnist@v1", "--timeout", "20"}).code, 0);
  json list = List();
  // Stop the server behind the coordinator's back (SIGSTOP: it neither answers
  // nor exits): the listing still works and says it is unreachable.
  int pid = list[0]["pid"];
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  auto t0 = std::chrono::steady_clock::now();
  json stuck = List();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(8));
  EXPECT_EQ(stuck[0]["state"], "SERVING");
  EXPECT_EQ(stuck[0]["health"], "unreachable");
  EXPECT_TRUE(stuck[0]["request_rate"].is_null());
  ::kill(pid, SIGCONT);
}

}  // namespace
}  // namespace gantry::coordinator
