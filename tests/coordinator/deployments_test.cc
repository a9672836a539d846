// Deployments with real processes: the LocalMpiLauncher starts a stand-in
// gantry-serve (tests/coordinator/fake_serve.py: same flags, writes the ready
// file, answers /v2/health/ready, exits on SIGTERM), and the tests drive
// Deployments::Tick() while polling with deadlines.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "cli/http_get.h"
#include "common/fs.h"
#include "common/glibc_tunables.h"
#include "common/process.h"
#include "common/protocol.h"
#include "common/rpc.h"
#include "coordinator/deployment_service.h"
#include "coordinator/deployments.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

using gantry::testing::TempDir;
using gantry::testing::WaitFor;

std::string FakeServe() { return std::string(GANTRY_TEST_SOURCE_DIR) + "/tests/coordinator/fake_serve.py"; }

class DeploymentsTest : public ::testing::Test {
 protected:
  DeploymentsTest() : launcher_({"mpirun", "/nonexistent/gantry-worker", {}}) {
    options_.serve_binary = FakeServe();
    options_.storage_endpoint = "tcp://127.0.0.1:1";
    options_.monitor_endpoint = "tcp://127.0.0.1:2";
    options_.data_dir = dir_.path();
    options_.policy.stop_grace = std::chrono::milliseconds(3000);
  }

  std::unique_ptr<Deployments> Open() {
    auto store = DeploymentStore::Open(dir_.File("coordinator.db"));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return std::make_unique<Deployments>(options_, std::move(store).value(), launcher_, clock_);
  }

  static DeploymentSpec Spec(const std::string& model, const std::string& ref = "prod") {
    DeploymentSpec s;
    s.model = model;
    s.ref = ref;
    return s;
  }

  // Ticks `d` until deployment `name` is in `state` (or the timeout passes).
  static bool TickUntil(Deployments& d, const std::string& name, DeploymentState state,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return WaitFor(
        [&] {
          d.Tick();
          auto got = d.Get(name);
          return got.ok() && got->state == state;
        },
        timeout);
  }

  static int ReadyPid(const Deployment& d) {
    auto text = ReadFile(d.dir + "/ready.json");
    if (!text.ok()) return 0;
    return json::parse(*text).value("pid", 0);
  }

  static int Health(int port) {
    auto r = cli::HttpGet("127.0.0.1", port, "/v2/health/ready", std::chrono::milliseconds(2000));
    return r.ok() ? r->status : -1;
  }

  TempDir dir_;
  SystemClock clock_;
  LocalMpiLauncher launcher_;
  DeploymentsOptions options_;
};

TEST_F(DeploymentsTest, DeployServesAndPassesTheContractFlags) {
  auto d = Open();
  auto created = d->Deploy(Spec("mnist", "v3"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->spec.name, "mnist");  // defaults to the model's name
  EXPECT_EQ(created->state, DeploymentState::kStarting);
  ASSERT_TRUE(TickUntil(*d, "mnist", DeploymentState::kServing));
  Deployment s = d->Get("mnist").value();
  EXPECT_GT(s.port, 0);
  EXPECT_EQ(s.version, "mnist:3");
  EXPECT_EQ(s.serve_pid, ReadyPid(s));
  EXPECT_EQ(Health(s.port), 200);

  auto argv = json::parse(ReadFile(s.dir + "/argv.json").value());
  std::vector<std::string> want = {"--storage", "tcp://127.0.0.1:1", "--model", "mnist@v3", "--port", "0",
                                   "--host", "127.0.0.1", "--max-batch", "64", "--max-delay-ms", "0",
                                   "--monitor-ingest", "tcp://127.0.0.1:2", "--sample-rate", "0.1",
                                   "--data-dir", dir_.path(),
                                   "--name", "mnist", "--ready-file", s.dir + "/ready.json"};
  EXPECT_EQ(argv.get<std::vector<std::string>>(), want);
  // gantry-serve starts with the deeper malloc cache (GLIBC_TUNABLES is unset
  // in the test's environment, or the user's value is kept before it).
  auto env = json::parse(ReadFile(s.dir + "/env.json").value());
  const std::string tunables = env["GLIBC_TUNABLES"].get<std::string>();
  EXPECT_NE(tunables.find(kServeMallocCache), std::string::npos) << tunables;

  // The wire form carries the address the CLI probes.
  json j = DeploymentJson(s, "127.0.0.1");
  EXPECT_EQ(j["address"], "http://127.0.0.1:" + std::to_string(s.port));
  EXPECT_EQ(j["state"], "SERVING");
}

// gantry-serve rewrites its ready file after a hot reload; the deployment's
// record (gantry deployments) follows it, and only for this process's file.
TEST_F(DeploymentsTest, TheVersionShownFollowsAHotReload) {
  auto d = Open();
  ASSERT_TRUE(d->Deploy(Spec("mnist", "prod")).ok());
  ASSERT_TRUE(TickUntil(*d, "mnist", DeploymentState::kServing));
  Deployment s = d->Get("mnist").value();
  json ready = json::parse(ReadFile(s.dir + "/ready.json").value());
  ready["models"][0]["version"] = 4;
  ASSERT_TRUE(WriteFileAtomic(s.dir + "/ready.json", ready.dump()).ok());
  ASSERT_TRUE(WaitFor([&] {
    d->Tick();
    return d->Get("mnist")->version == "mnist:4";
  }, std::chrono::seconds(5)));
  EXPECT_NE(d->Get("mnist")->reason.find("(mnist:4)"), std::string::npos) << d->Get("mnist")->reason;
  EXPECT_EQ(d->Get("mnist")->state, DeploymentState::kServing);
  // Another process's file (a stale one) changes nothing.
  ready["pid"] = s.serve_pid + 100000;
  ready["models"][0]["version"] = 5;
  ASSERT_TRUE(WriteFileAtomic(s.dir + "/ready.json", ready.dump()).ok());
  for (int i = 0; i < 5; ++i) d->Tick();
  EXPECT_EQ(d->Get("mnist")->version, "mnist:4");
  ASSERT_TRUE(d->Undeploy("mnist").ok());
  ASSERT_TRUE(WaitFor([&] {
    d->Tick();
    return !d->Get("mnist").ok();
  }, std::chrono::seconds(10)));
}

TEST_F(DeploymentsTest, KillNineIsRestartedAndServingAgainWithinFiveSeconds) {
  auto d = Open();
  ASSERT_TRUE(d->Deploy(Spec("mnist")).ok());
  ASSERT_TRUE(TickUntil(*d, "mnist", DeploymentState::kServing));
  Deployment before = d->Get("mnist").value();
  ASSERT_GT(before.serve_pid, 0);

  auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(before.serve_pid, SIGKILL), 0);
  // Serving again: a new process, on the same port, answering ready.
  bool back = WaitFor(
      [&] {
        d->Tick();
        auto now = d->Get("mnist").value();
        return now.state == DeploymentState::kServing && now.serve_pid != before.serve_pid &&
               Health(now.port) == 200;
      },
      std::chrono::seconds(5));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  ASSERT_TRUE(back) << d->Get("mnist")->reason;
  Deployment after = d->Get("mnist").value();
  EXPECT_EQ(after.port, before.port);  // the address stays
  EXPECT_EQ(after.restarts, 1);
  EXPECT_NE(after.last_exit.find("signal 9"), std::string::npos) << after.last_exit;
  EXPECT_FALSE(ProcessAlive(before.serve_pid));
  std::printf("{\"figure\":\"deployment_kill9_to_ready_seconds\",\"value\":%.3f}\n", took);
}

TEST_F(DeploymentsTest, UndeployStopsTheProcessAndForgetsIt) {
  auto d = Open();
  ASSERT_TRUE(d->Deploy(Spec("mnist")).ok());
  ASSERT_TRUE(TickUntil(*d, "mnist", DeploymentState::kServing));
  Deployment s = d->Get("mnist").value();
  auto stopping = d->Undeploy("mnist");
  ASSERT_TRUE(stopping.ok()) << stopping.status().ToString();
  EXPECT_EQ(stopping->state, DeploymentState::kStopping);
  ASSERT_TRUE(WaitFor([&] {
    d->Tick();
    return d->List().empty();
  }));
  EXPECT_FALSE(ProcessAlive(s.serve_pid));
  EXPECT_FALSE(GroupAlive(s.pgid));
  EXPECT_NE(Health(s.port), 200);
  EXPECT_EQ(d->Undeploy("mnist").status().code(), StatusCode::kNotFound);
  // The record is gone from the database too.
  auto reopened = Open();
  ASSERT_TRUE(reopened->Recover().ok());
  EXPECT_TRUE(reopened->List().empty());
}

TEST_F(DeploymentsTest, RestartedCoordinatorReadoptsALiveDeploymentWithoutRestartingIt) {
  auto first = Open();
  ASSERT_TRUE(first->Deploy(Spec("mnist")).ok());
  ASSERT_TRUE(TickUntil(*first, "mnist", DeploymentState::kServing));
  Deployment s = first->Get("mnist").value();
  first->Abandon();  // the coordinator dies; its deployment keeps serving
  first.reset();
  ASSERT_TRUE(ProcessAlive(s.serve_pid));

  auto second = Open();
  ASSERT_TRUE(second->Recover().ok());
  auto got = second->Get("mnist");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, DeploymentState::kServing);
  EXPECT_EQ(got->pgid, s.pgid);
  // A few turns of the loop change nothing: same process, no restart.
  for (int i = 0; i < 20; ++i) second->Tick();
  got = second->Get("mnist");
  EXPECT_EQ(got->state, DeploymentState::kServing);
  EXPECT_EQ(got->serve_pid, s.serve_pid);
  EXPECT_EQ(got->restarts, 0);
  EXPECT_EQ(Health(s.port), 200);

  // The adopted process is still watched: kill -9 restarts it.
  ASSERT_EQ(::kill(s.serve_pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        second->Tick();
        auto now = second->Get("mnist").value();
        return now.state == DeploymentState::kServing && now.serve_pid != s.serve_pid;
      },
      std::chrono::seconds(5)));
  // And undeploy stops it.
  ASSERT_TRUE(second->Undeploy("mnist").ok());
  ASSERT_TRUE(WaitFor([&] {
    second->Tick();
    return second->List().empty();
  }));
}

TEST_F(DeploymentsTest, ShutdownStopsServersAndTheNextCoordinatorStartsThemAgain) {
  auto first = Open();
  ASSERT_TRUE(first->Deploy(Spec("mnist")).ok());
  ASSERT_TRUE(TickUntil(*first, "mnist", DeploymentState::kServing));
  Deployment s = first->Get("mnist").value();
  first->Shutdown();
  EXPECT_FALSE(GroupAlive(s.pgid));
  first.reset();

  auto second = Open();
  ASSERT_TRUE(second->Recover().ok());
  EXPECT_EQ(second->Get("mnist")->state, DeploymentState::kRestarting);
  ASSERT_TRUE(TickUntil(*second, "mnist", DeploymentState::kServing));
  EXPECT_EQ(second->Get("mnist")->port, s.port);  // same address as before
  EXPECT_EQ(second->Get("mnist")->restarts, 0);  // a start with the cluster is no restart
}

TEST_F(DeploymentsTest, AServerThatKeepsDyingEndsInACrashLoop) {
  options_.policy.initial_backoff = std::chrono::milliseconds(10);
  options_.policy.max_restarts = 2;
  auto d = Open();
  ASSERT_TRUE(d->Deploy(Spec("crash")).ok());
  ASSERT_TRUE(TickUntil(*d, "crash", DeploymentState::kCrashLoop));
  Deployment c = d->Get("crash").value();
  EXPECT_EQ(c.restarts, 2);
  EXPECT_NE(c.reason.find("crash loop: 3 exits"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("exit code 3"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("gantry undeploy crash"), std::string::npos) << c.reason;
  // Left down: more ticks start nothing.
  for (int i = 0; i < 10; ++i) d->Tick();
  EXPECT_EQ(d->Get("crash")->state, DeploymentState::kCrashLoop);
  EXPECT_EQ(d->Get("crash")->pid, 0);
  // Undeploying it needs no process to stop.
  ASSERT_TRUE(d->Undeploy("crash").ok());
  EXPECT_TRUE(d->List().empty());
}

TEST_F(DeploymentsTest, AServerNeverReadyIsKilledAndRetried) {
  options_.policy.ready_timeout = std::chrono::milliseconds(300);
  auto d = Open();
  ASSERT_TRUE(d->Deploy(Spec("slow")).ok());
  ASSERT_TRUE(TickUntil(*d, "slow", DeploymentState::kRestarting));
  EXPECT_NE(d->Get("slow")->last_exit.find("not ready within 300 ms"), std::string::npos)
      << d->Get("slow")->last_exit;
}

// Binds a loopback port and keeps it until destroyed.
class HeldPort {
 public:
  HeldPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 1);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~HeldPort() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(DeploymentsTest, ValidationErrorsNameTheField) {
  auto d = Open();
  auto error = [&](DeploymentSpec s) { return d->Deploy(std::move(s)).status(); };
  auto s = Spec("mnist");
  s.name = "../etc";
  EXPECT_NE(error(s).message().find("name '../etc'"), std::string::npos) << error(s).message();
  s = Spec("mnist", "");
  EXPECT_NE(error(s).message().find("ref"), std::string::npos) << error(s).message();
  s = Spec("bad model");
  EXPECT_NE(error(s).message().find("model 'bad model'"), std::string::npos) << error(s).message();
  s = Spec("mnist");
  s.max_batch = 0;
  EXPECT_NE(error(s).message().find("max_batch must be 1..4096 (got 0)"), std::string::npos);
  s = Spec("mnist");
  s.max_delay_ms = -1;
  EXPECT_NE(error(s).message().find("max_delay_ms"), std::string::npos);
  s = Spec("mnist");
  s.port = 70000;
  EXPECT_NE(error(s).message().find("port must be 0..65535"), std::string::npos);
  s = Spec("mnist");
  s.sample_rate = 1.5;
  EXPECT_NE(error(s).message().find("sample_rate must be 0..1 (got 1.5"), std::string::npos) << error(s).message();

  HeldPort held;
  s = Spec("mnist");
  s.port = held.port();
  Status busy = error(s);
  EXPECT_EQ(busy.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(busy.message().find("port " + std::to_string(held.port())), std::string::npos) << busy.message();
  EXPECT_TRUE(d->List().empty());  // nothing recorded for a refused deploy

  ASSERT_TRUE(d->Deploy(Spec("mnist")).ok());
  Status taken = error(Spec("mnist"));
  EXPECT_EQ(taken.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(taken.message().find("name 'mnist' is taken"), std::string::npos) << taken.message();

  std::string model, ref;
  EXPECT_NE(ParseModelRef("mnist", &model, &ref).message().find("MODEL@REF"), std::string::npos);
  ASSERT_TRUE(ParseModelRef("mnist@prod", &model, &ref).ok());
  EXPECT_EQ(model + "/" + ref, "mnist/prod");
}

TEST_F(DeploymentsTest, MissingServeBinaryOrStorageIsAPreconditionError) {
  options_.serve_binary = dir_.File("no-such-gantry-serve");
  auto d = Open();
  Status s = d->Deploy(Spec("mnist")).status();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("no gantry-serve executable at"), std::string::npos) << s.message();
  options_.serve_binary = FakeServe();
  options_.storage_endpoint.clear();
  auto e = Open();
  EXPECT_EQ(e->Deploy(Spec("mnist")).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace gantry::coordinator

namespace gantry::coordinator {
namespace {

// The wire handlers: deploy, get_deployment, list_deployments, undeploy.
TEST_F(DeploymentsTest, WireMessagesRoundTripAndNameBadFields) {
  auto d = Open();
  zmq::context_t ctx;
  RpcServer server(ctx, {});
  RegisterDeploymentHandlers(server, *d);
  auto call = [&](const std::string& type, const json& body) {
    auto reply = DecodeReply(server.Dispatch(EncodeRequest(type, "1", "", body)));
    EXPECT_TRUE(reply.ok());
    return *reply;
  };
  Reply bad = call("deploy", {{"ref", "prod"}});
  EXPECT_FALSE(bad.status.ok());
  EXPECT_NE(bad.status.message().find("model"), std::string::npos) << bad.status.message();
  bad = call("deploy", {{"model", "mnist"}, {"max_batch", "many"}});
  EXPECT_FALSE(bad.status.ok());
  EXPECT_NE(bad.status.message().find("max_batch"), std::string::npos) << bad.status.message();

  Reply ok = call("deploy", {{"model", "mnist"}, {"ref", 3}, {"name", "m"}, {"max_delay_ms", 2}});
  ASSERT_TRUE(ok.status.ok()) << ok.status.message();
  EXPECT_EQ(ok.body["deployment"]["ref"], "v3");  // an integer ref reads as vN
  EXPECT_EQ(ok.body["deployment"]["max_delay_ms"], 2);
  ASSERT_TRUE(TickUntil(*d, "m", DeploymentState::kServing));
  Reply got = call("get_deployment", {{"name", "m"}});
  ASSERT_TRUE(got.status.ok());
  EXPECT_EQ(got.body["deployment"]["state"], "SERVING");
  EXPECT_GT(got.body["deployment"]["port"].get<int>(), 0);
  Reply list = call("list_deployments", json::object());
  ASSERT_TRUE(list.status.ok());
  EXPECT_EQ(list.body["deployments"].size(), 1u);
  Reply gone = call("undeploy", {{"name", "m"}});
  ASSERT_TRUE(gone.status.ok());
  EXPECT_EQ(gone.body["deployment"]["state"], "STOPPING");
  EXPECT_EQ(call("get_deployment", {{"name", "nope"}}).status.code(), StatusCode::kNotFound);
  ASSERT_TRUE(WaitFor([&] {
    d->Tick();
    return d->List().empty();
  }));
}

}  // namespace
}  // namespace gantry::coordinator
