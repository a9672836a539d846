// Issue 13 item 5, done when: an unauthenticated client is refused by every
// service and `shutdown` from it does nothing. Runs the real gantry-storage,
// gantry-monitor and gantry-coordinator with --auth curve on loopback, and
// the real `gantry` CLI against them.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <zmq.hpp>

#include "common/curve.h"
#include "common/data_dir.h"
#include "common/fs.h"
#include "common/msgpack.h"
#include "common/process.h"
#include "common/rpc.h"
#include "tests/support/test_support.h"

namespace gantry {
namespace {

using testing::BinDir;

std::string Slurp(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? *text : "";
}
using testing::WaitFor;

struct Daemon {
  std::string name;
  ChildProcess child;
  ServiceInfo info;
  std::string out;
};

// Connects a `type` socket to `endpoint` with `settings` and returns how its
// first handshake ended: ZMQ_EVENT_HANDSHAKE_SUCCEEDED or a
// ZMQ_EVENT_HANDSHAKE_FAILED_* (0: nothing within 5 s). The socket stays
// open in `out`.
uint16_t Handshake(zmq::context_t& ctx, zmq::socket_type type, const std::string& endpoint,
                   const CurveSettings& settings, std::unique_ptr<zmq::socket_t>& out) {
  static int n = 0;
  const std::string addr = "inproc://auth-test-monitor-" + std::to_string(++n);
  out = std::make_unique<zmq::socket_t>(ctx, type);
  out->set(zmq::sockopt::linger, 0);
  if (type == zmq::socket_type::sub) out->set(zmq::sockopt::subscribe, "");
  MakeCurveClient(*out, settings);
  EXPECT_EQ(zmq_socket_monitor(out->handle(), addr.c_str(), ZMQ_EVENT_ALL), 0);
  // Connected before the socket dials, so that no event is missed.
  zmq::socket_t mon(ctx, zmq::socket_type::pair);
  mon.set(zmq::sockopt::linger, 0);
  mon.set(zmq::sockopt::rcvtimeo, 5000);
  mon.connect(addr);
  out->connect(endpoint);
  uint16_t result = 0;
  while (result == 0) {
    zmq::message_t event;
    if (!mon.recv(event)) break;
    zmq::message_t address;
    if (event.more()) (void)mon.recv(address);
    uint16_t id = 0;
    std::memcpy(&id, event.data(), sizeof id);
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED || id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
        id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH || id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
      result = id;
    }
  }
  (void)zmq_socket_monitor(out->handle(), nullptr, 0);
  return result;
}

class AuthDaemonsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (BinDir().empty()) GTEST_SKIP() << "GANTRY_BIN_DIR is not set";
    data_ = tmp_.File("data");
    ::unsetenv(kKeysEnv);
  }
  void TearDown() override { SetProcessCurve(CurveSettings{}); }

  Daemon Start(const std::string& name, std::vector<std::string> args) {
    Daemon d;
    d.name = name;
    d.out = tmp_.File(name + ".out");
    SpawnOptions o;
    o.argv = {BinDir() + "/gantry-" + name, "--data-dir", data_, "--auth", "curve", "--log-level", "warn"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.stdout_path = d.out;
    auto child = ChildProcess::Spawn(o);
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    if (!child.ok()) return d;
    d.child = std::move(child).value();
    DataDir dir(data_);
    EXPECT_TRUE(WaitFor(
        [&] {
          if (d.child.Poll()) return true;
          auto i = dir.ReadServiceInfo(name);
          if (i.ok() && i->pid == d.child.pid()) d.info = *i;
          return i.ok() && i->pid == d.child.pid();
        },
        std::chrono::seconds(20)))
        << name << " did not start: " << Slurp(d.out);
    EXPECT_TRUE(d.child.running()) << name << " exited: " << Slurp(d.out);
    return d;
  }

  Result<json> CallAs(const CurveSettings& s, const std::string& endpoint, const std::string& type,
                      const json& body = json::object()) {
    SetProcessCurve(s);
    RpcClient client(ctx_, endpoint, std::chrono::seconds(10));
    auto r = client.Call(type, body);
    SetProcessCurve(CurveSettings{});
    return r;
  }

  CurveSettings Authorised() { return LoadClientCurve(data_ + "/keys").value(); }
  CurveSettings Stranger() {
    CurveSettings s = Authorised();
    s.client = GenerateCurveKeyPair().value();
    return s;
  }

  // Every refusal a service's API must give; shutdown attempts change nothing.
  void ExpectApiRefusesStrangers(Daemon& d) {
    const std::string api = d.info.endpoints.at("api");
    SCOPED_TRACE(d.name + " " + api);
    auto no_keys = CallAs(CurveSettings{}, api, "shutdown");
    EXPECT_EQ(no_keys.status().code(), StatusCode::kFailedPrecondition) << no_keys.status().ToString();
    EXPECT_NE(no_keys.status().message().find("requires CURVE authentication"), std::string::npos)
        << no_keys.status().message();
    auto stranger = CallAs(Stranger(), api, "shutdown");
    EXPECT_EQ(stranger.status().code(), StatusCode::kFailedPrecondition) << stranger.status().ToString();
    EXPECT_NE(stranger.status().message().find("authorized_keys"), std::string::npos) << stranger.status().message();
    // Still there, and answering its authorised clients.
    auto ping = CallAs(Authorised(), api, "ping");
    ASSERT_TRUE(ping.ok()) << ping.status().ToString();
    EXPECT_EQ((*ping)["pid"], d.child.pid());
    EXPECT_EQ((*ping)["auth"], "curve");
    EXPECT_TRUE(d.child.running());
    EXPECT_EQ(RunFileAuth(DataDir(data_).RunFile(d.name)), "curve");
  }

  void ShutDown(Daemon& d) {
    auto r = CallAs(Authorised(), d.info.endpoints.at("api"), "shutdown");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(WaitFor([&] { return d.child.Poll().has_value(); }, std::chrono::seconds(20))) << d.name;
    auto e = d.child.Poll();
    EXPECT_TRUE(e && e->ok()) << d.name << ": " << (e ? e->ToString() : "running");
  }

  testing::TempDir tmp_;
  std::string data_;
  zmq::context_t ctx_;
};

TEST_F(AuthDaemonsTest, EveryServiceRefusesUnauthenticatedClientsAndTheirShutdown) {
  Daemon storage = Start("storage", {"--bind", "tcp://127.0.0.1:0"});
  ASSERT_TRUE(storage.child.running());
  // The first service made the keys: a private directory of private files.
  for (const char* f : {kServerKeyFile, kServerPubFile, kClientKeyFile, kAuthorizedKeysFile}) {
    EXPECT_TRUE(PathExists(data_ + "/keys/" + f)) << f;
  }
  Daemon monitor = Start("monitor", {"--ingest", "tcp://127.0.0.1:0", "--feed", "tcp://127.0.0.1:0", "--api",
                                     "tcp://127.0.0.1:0", "--http", "127.0.0.1:0"});
  ASSERT_TRUE(monitor.child.running());
  Daemon coordinator = Start("coordinator", {"--bind", "tcp://127.0.0.1:0", "--slots", "1", "--storage",
                                             storage.info.endpoints.at("api"), "--monitor",
                                             monitor.info.endpoints.at("ingest")});
  ASSERT_TRUE(coordinator.child.running());

  ExpectApiRefusesStrangers(storage);
  ExpectApiRefusesStrangers(monitor);
  ExpectApiRefusesStrangers(coordinator);

  // The feeds and the ingest: a stranger's handshake fails, an authorised
  // one succeeds.
  std::unique_ptr<zmq::socket_t> s1, s2, s3;
  for (const auto& [ep, type] : std::vector<std::pair<std::string, zmq::socket_type>>{
           {storage.info.endpoints.at("feed"), zmq::socket_type::sub},
           {monitor.info.endpoints.at("feed"), zmq::socket_type::sub},
           {monitor.info.endpoints.at("ingest"), zmq::socket_type::dealer}}) {
    SCOPED_TRACE(ep);
    // A plain client: the service closes on it (mechanism mismatch, seen by
    // the client as such or as the connection closed under its greeting).
    const uint16_t plain = Handshake(ctx_, type, ep, CurveSettings{}, s1);
    EXPECT_TRUE(plain == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || plain == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        << plain;
    EXPECT_EQ(Handshake(ctx_, type, ep, Stranger(), s2), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    EXPECT_EQ(Handshake(ctx_, type, ep, Authorised(), s3), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
  }

  // Metrics from an unauthenticated sender never arrive; an authorised
  // sender's do.
  auto frame = [](const std::string& job) {
    return ToMsgpack({{"v", 1}, {"type", "metrics"}, {"id", "t"},
                      {"body", {{"job_id", job}, {"attempt", 1}, {"rank", 0}, {"world_size", 1}, {"step", 1},
                                {"total_steps", 10}, {"epoch", 0}, {"time", 1.7e9}, {"values", {{"loss", 0.5}}}}}});
  };
  const std::string ingest = monitor.info.endpoints.at("ingest");
  const uint16_t plain = Handshake(ctx_, zmq::socket_type::dealer, ingest, CurveSettings{}, s1);
  ASSERT_TRUE(plain == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || plain == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) << plain;
  (void)s1->send(zmq::buffer(frame("j-stranger")), zmq::send_flags::dontwait);
  ASSERT_EQ(Handshake(ctx_, zmq::socket_type::dealer, ingest, Authorised(), s3), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
  ASSERT_TRUE(s3->send(zmq::buffer(frame("j-ok")), zmq::send_flags::none));
  const std::string api = monitor.info.endpoints.at("api");
  EXPECT_TRUE(WaitFor([&] {
    auto r = CallAs(Authorised(), api, "get_metrics", {{"job_id", "j-ok"}});
    return r.ok() && (*r)["points"].size() == 1;
  }));
  // The monitor never heard of the stranger's job.
  auto stranger_points = CallAs(Authorised(), api, "get_metrics", {{"job_id", "j-stranger"}});
  EXPECT_EQ(stranger_points.status().code(), StatusCode::kNotFound) << stranger_points.status().ToString();
  s1.reset();
  s2.reset();
  s3.reset();

  // The CLI: on this host it finds <data>/keys by itself; with a stranger's
  // keys it is refused, and its `gantry down` stops nothing.
  const std::string stranger_dir = tmp_.File("stranger");
  ASSERT_TRUE(MakeDirs(stranger_dir).ok());
  ASSERT_TRUE(WriteFileAtomic(stranger_dir + "/server.pub", "public = " + Authorised().server_public_key + "\n").ok());
  const CurveKeyPair pair = GenerateCurveKeyPair().value();
  ASSERT_TRUE(WriteFileAtomic(stranger_dir + "/client.key",
                              "public = " + pair.public_key + "\nsecret = " + pair.secret_key + "\n", 0600)
                  .ok());
  auto cli = [&](std::vector<std::string> args, const std::string& out) {
    SpawnOptions o;
    o.argv = {BinDir() + "/gantry", "--data-dir", data_};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.stdout_path = out;
    auto c = ChildProcess::Spawn(o);
    EXPECT_TRUE(c.ok());
    return c.ok() ? c->Wait().exit_code : -1;
  };
  EXPECT_EQ(cli({"--keys", stranger_dir, "ckpt", "models"}, tmp_.File("cli1.out")), 1);
  EXPECT_NE(Slurp(tmp_.File("cli1.out")).find("authorized_keys"), std::string::npos)
      << Slurp(tmp_.File("cli1.out"));
  EXPECT_EQ(cli({"--keys", stranger_dir, "down"}, tmp_.File("cli3.out")), 1);
  EXPECT_NE(Slurp(tmp_.File("cli3.out")).find("authorized_keys"), std::string::npos) << Slurp(tmp_.File("cli3.out"));
  EXPECT_TRUE(storage.child.running() && monitor.child.running() && coordinator.child.running());
  EXPECT_EQ(cli({"status"}, tmp_.File("cli2.out")), 0) << Slurp(tmp_.File("cli2.out"));

  ShutDown(coordinator);
  ShutDown(monitor);
  ShutDown(storage);
}

TEST_F(AuthDaemonsTest, ServicesRefuseToBindBeyondLoopbackWithoutCurve) {
  struct Case {
    std::string name;
    std::vector<std::string> args;
  };
  const Case cases[] = {
      {"storage", {"--bind", "tcp://0.0.0.0:0"}},
      {"storage", {"--bind", "tcp://127.0.0.1:0", "--feed", "tcp://0.0.0.0:0"}},
      {"monitor", {"--ingest", "tcp://0.0.0.0:0", "--feed", "tcp://127.0.0.1:0", "--api", "tcp://127.0.0.1:0",
                   "--http", "127.0.0.1:0"}},
      {"monitor", {"--ingest", "tcp://127.0.0.1:0", "--feed", "tcp://127.0.0.1:0", "--api", "tcp://127.0.0.1:0",
                   "--http", "0.0.0.0:0"}},
      {"coordinator", {"--bind", "tcp://0.0.0.0:0", "--slots", "1"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name + " " + c.args[1] + " " + c.args.back());
    const std::string out = tmp_.File(c.name + "-plain.out");
    std::error_code ec;
    std::filesystem::remove(out, ec);
    SpawnOptions o;
    o.argv = {BinDir() + "/gantry-" + c.name, "--data-dir", data_, "--auth", "none"};
    o.argv.insert(o.argv.end(), c.args.begin(), c.args.end());
    o.stdout_path = out;
    auto child = ChildProcess::Spawn(o);
    ASSERT_TRUE(child.ok());
    ExitInfo e = child->Wait();
    EXPECT_EQ(e.exit_code, 1) << e.ToString();
    EXPECT_NE(Slurp(out).find("auth"), std::string::npos) << Slurp(out);
  }
}

}  // namespace
}  // namespace gantry
