// RpcClient liveness against a server in another process: one that is
// SIGKILLed or frozen mid-call, one that is slow but alive, one that is not
// running, and one that comes back while an idempotent call retries.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/rpc.h"
#include "tests/support/test_support.h"

namespace gantry {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Short liveness settings so the tests run in seconds.
RpcLiveness Fast() {
  RpcLiveness l;
  l.connect_timeout = milliseconds(1000);
  l.heartbeat_interval = milliseconds(100);
  l.heartbeat_timeout = milliseconds(400);
  return l;
}

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

// A forked RpcServer: "echo"; "hang" writes to a pipe that it started, then
// blocks; "slow" sleeps body.ms first; "work" hangs like "hang" when
// `work_hangs`, else answers {"server": name}. Killed (SIGKILL) by the
// destructor.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& bind = "tcp://127.0.0.1:0", bool work_hangs = false,
                         const std::string& name = "") {
    int ep[2], started[2];
    if (::pipe(ep) != 0 || ::pipe(started) != 0) ADD_FAILURE() << "pipe";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ep[0]);
      ::close(started[0]);
      zmq::context_t ctx;
      RpcServer server(ctx, RpcServerOptions{bind});
      if (!server.Bind().ok()) ::_exit(2);
      const int fd = started[1];
      server.Handle("echo", [](const Request& r) -> Result<json> { return r.body; });
      server.Handle("hang", [fd](const Request&) -> Result<json> {
        (void)!::write(fd, "h", 1);
        std::this_thread::sleep_for(std::chrono::hours(1));
        return json::object();
      });
      server.Handle("work", [fd, work_hangs, name](const Request&) -> Result<json> {
        if (!work_hangs) return json{{"server", name}};
        (void)!::write(fd, "w", 1);
        std::this_thread::sleep_for(std::chrono::hours(1));
        return json::object();
      });
      server.Handle("slow", [fd](const Request& r) -> Result<json> {
        (void)!::write(fd, "s", 1);
        std::this_thread::sleep_for(milliseconds(r.body.value("ms", 0)));
        return json{{"slept", true}};
      });
      const std::string line = server.endpoint() + "\n";
      (void)!::write(ep[1], line.data(), line.size());
      (void)server.Serve();
      ::_exit(0);
    }
    ::close(ep[1]);
    ::close(started[1]);
    started_fd_ = started[0];
    char c;
    while (::read(ep[0], &c, 1) == 1 && c != '\n') endpoint_.push_back(c);
    ::close(ep[0]);
  }
  ~ServerProcess() {
    Kill();
    ::close(started_fd_);
  }
  const std::string& endpoint() const { return endpoint_; }
  // Blocks until a "hang" or "slow" handler has begun.
  void WaitForHandler() {
    char c;
    (void)!::read(started_fd_, &c, 1);
  }
  void Signal(int sig) { ::kill(pid_, sig); }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int started_fd_ = -1;
  std::string endpoint_;
};

TEST(RpcLivenessTest, ServerKilledMidCallGivesUnavailableFast) {
  ServerProcess server;
  ASSERT_FALSE(server.endpoint().empty());
  zmq::context_t ctx;
  // The timeout is long: liveness, not the timeout, must end the call.
  RpcClient client(ctx, server.endpoint(), std::chrono::seconds(60));
  ASSERT_TRUE(client.Call("echo").ok());
  Clock::time_point killed;
  std::thread killer([&] {
    server.WaitForHandler();
    killed = Clock::now();
    server.Kill();
  });
  auto r = client.Call("hang");
  const int64_t after_kill = MsSince(killed);
  killer.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find(server.endpoint()), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("'hang'"), std::string::npos) << r.status().message();
  EXPECT_LT(after_kill, 3000) << r.status().message();
}

TEST(RpcLivenessTest, FrozenServerIsDroppedByHeartbeats) {
  ServerProcess server;
  zmq::context_t ctx;
  RpcClient client(ctx, server.endpoint(), std::chrono::seconds(60), Fast());
  ASSERT_TRUE(client.Call("echo").ok());
  server.Signal(SIGSTOP);  // alive but answering nothing, not even PINGs
  const auto start = Clock::now();
  auto r = client.Call("echo");
  const int64_t took = MsSince(start);
  server.Signal(SIGCONT);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("heartbeats"), std::string::npos) << r.status().message();
  EXPECT_LT(took, 3000) << r.status().message();
}

TEST(RpcLivenessTest, SlowButAliveServerStillAnswers) {
  ServerProcess server;
  zmq::context_t ctx;
  RpcClient client(ctx, server.endpoint(), std::chrono::seconds(60), Fast());
  // Five heartbeat timeouts inside one handler: the server's I/O thread
  // keeps answering PINGs, so the connection stays up.
  const int ms = 5 * static_cast<int>(Fast().heartbeat_timeout.count());
  const auto start = Clock::now();
  auto r = client.Call("slow", {{"ms", ms}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["slept"], true);
  EXPECT_GE(MsSince(start), ms);
}

TEST(RpcLivenessTest, ServerNotRunningGivesUnavailableWithinTheConnectTimeout) {
  std::string endpoint;
  {
    ServerProcess gone;  // a port that was free a moment ago
    endpoint = gone.endpoint();
  }
  zmq::context_t ctx;
  RpcClient client(ctx, endpoint, std::chrono::seconds(60), Fast());
  const auto start = Clock::now();
  auto r = client.Call("echo");
  const int64_t took = MsSince(start);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("cannot reach " + endpoint), std::string::npos) << r.status().message();
  EXPECT_LT(took, 2500);
}

TEST(RpcLivenessTest, IdempotentCallIsRetriedOnceTheServiceIsBack) {
  auto first = std::make_unique<ServerProcess>("tcp://127.0.0.1:0", /*work_hangs=*/true, "first");
  const std::string endpoint = first->endpoint();
  zmq::context_t ctx;
  RpcClient client(ctx, endpoint, std::chrono::seconds(60), Fast());
  std::unique_ptr<ServerProcess> second;
  std::thread restarter([&] {
    first->WaitForHandler();
    first->Kill();  // mid-call
    second = std::make_unique<ServerProcess>(endpoint, /*work_hangs=*/false, "second");
  });
  RpcClient::CallOptions o;
  o.idempotent = true;
  o.retry_for = std::chrono::seconds(10);
  const auto start = Clock::now();
  auto r = client.Call("work", json::object(), o);
  restarter.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["server"], "second");
  EXPECT_LT(MsSince(start), 10000);

  // Not idempotent: the same loss is reported, not retried.
  ServerProcess third_hangs("tcp://127.0.0.1:0", /*work_hangs=*/true, "third");
  RpcClient once(ctx, third_hangs.endpoint(), std::chrono::seconds(60), Fast());
  std::thread killer([&] {
    third_hangs.WaitForHandler();
    third_hangs.Kill();
  });
  o.idempotent = false;
  auto lost = once.Call("work", json::object(), o);
  killer.join();
  EXPECT_EQ(lost.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(lost.status().message().find("lost the connection to " + third_hangs.endpoint()), std::string::npos)
      << lost.status().message();
}

TEST(RpcLivenessTest, IdempotentReadRetriesUntilTheWindowCloses) {
  std::string endpoint;
  {
    ServerProcess gone;
    endpoint = gone.endpoint();
  }
  zmq::context_t ctx;
  RpcClient client(ctx, endpoint, std::chrono::seconds(60), Fast());
  RpcClient::CallOptions o;
  o.idempotent = true;
  o.retry_for = milliseconds(1500);
  // Nothing comes back: unavailable once the window closes, not before.
  const auto start = Clock::now();
  auto r = client.Call("echo", json::object(), o);
  const int64_t took = MsSince(start);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_GE(took, 1400);
  EXPECT_LT(took, 3000);

  // A service that starts inside the window is reached.
  ServerProcess later_server(endpoint);
  auto ok = client.Call("echo", {{"x", 1}}, o);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)["x"], 1);
}

}  // namespace
}  // namespace gantry
