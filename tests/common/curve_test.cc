// CURVE keys, the ZAP handler and RpcServer/RpcClient over real sockets
// (common/curve.h). Settings are process-wide, so each client is created
// after SetProcessCurve() chose its keys.
#include "common/curve.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "common/fs.h"
#include "common/rpc.h"
#include "tests/support/test_support.h"

namespace gantry {
namespace {

using Clock = std::chrono::steady_clock;

int Mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

class ProcessCurveReset : public ::testing::Test {
 protected:
  void TearDown() override { SetProcessCurve(CurveSettings{}); }
};

using CurveKeysTest = ProcessCurveReset;

TEST_F(CurveKeysTest, EnsureClusterKeysCreatesPrivateFilesOnceAndKeepsThem) {
  testing::TempDir tmp;
  const std::string dir = tmp.File("data/keys");
  ASSERT_TRUE(EnsureClusterKeys(dir).ok());
  EXPECT_EQ(Mode(dir), 0700);
  for (const char* f : {kServerKeyFile, kServerPubFile, kClientKeyFile, kAuthorizedKeysFile}) {
    EXPECT_EQ(Mode(dir + "/" + f), 0600) << f;
  }
  auto server = ReadKeyFile(dir + "/" + kServerKeyFile);
  auto pub = ReadKeyFile(dir + "/" + kServerPubFile);
  auto client = ReadKeyFile(dir + "/" + kClientKeyFile);
  ASSERT_TRUE(server.ok() && pub.ok() && client.ok());
  EXPECT_TRUE(IsZ85Key(server->secret_key));
  EXPECT_EQ(pub->public_key, server->public_key);
  EXPECT_TRUE(pub->secret_key.empty());
  EXPECT_NE(client->public_key, server->public_key);
  auto authorized = ReadAuthorizedKeys(dir + "/" + kAuthorizedKeysFile);
  ASSERT_TRUE(authorized.ok());
  EXPECT_EQ(*authorized, std::set<std::string>{client->public_key});

  const std::string before = ReadFile(dir + "/" + kServerKeyFile).value();
  ASSERT_TRUE(EnsureClusterKeys(dir).ok());
  EXPECT_EQ(ReadFile(dir + "/" + kServerKeyFile).value(), before);
  EXPECT_EQ(ReadKeyFile(dir + "/" + kClientKeyFile)->secret_key, client->secret_key);

  auto as_server = LoadServerCurve(dir);
  ASSERT_TRUE(as_server.ok()) << as_server.status().ToString();
  EXPECT_TRUE(as_server->is_server());
  auto as_client = LoadClientCurve(dir);
  ASSERT_TRUE(as_client.ok()) << as_client.status().ToString();
  EXPECT_FALSE(as_client->is_server());
  EXPECT_EQ(as_client->server_public_key, server->public_key);
}

TEST_F(CurveKeysTest, KeysMayHoldEveryZ85Character) {
  // '#' and '=' are Z85 characters: a key holding them is not a comment.
  testing::TempDir tmp;
  for (int i = 0; i < 200; ++i) {
    auto pair = GenerateCurveKeyPair();
    ASSERT_TRUE(pair.ok());
    const std::string path = tmp.File("k" + std::to_string(i));
    ASSERT_TRUE(WriteFileAtomic(path, "# a pair\npublic = " + pair->public_key + "\nsecret = " + pair->secret_key +
                                          "  # trailing\n", 0600).ok());
    auto read = ReadKeyFile(path);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_EQ(read->secret_key, pair->secret_key);
    ASSERT_TRUE(WriteFileAtomic(path, pair->public_key + " #x\n", 0600).ok());
    auto keys = ReadAuthorizedKeys(path);
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    EXPECT_EQ(*keys, std::set<std::string>{pair->public_key});
  }
}

TEST_F(CurveKeysTest, RefusesReadableSecretsAndMalformedFiles) {
  testing::TempDir tmp;
  const std::string dir = tmp.File("keys");
  ASSERT_TRUE(EnsureClusterKeys(dir).ok());
  ASSERT_EQ(::chmod((dir + "/" + kClientKeyFile).c_str(), 0644), 0);
  auto open = ReadKeyFile(dir + "/" + kClientKeyFile);
  EXPECT_EQ(open.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(open.status().message().find("chmod 600"), std::string::npos) << open.status().message();
  // A public key alone may be readable.
  ASSERT_EQ(::chmod((dir + "/" + kServerPubFile).c_str(), 0644), 0);
  EXPECT_TRUE(ReadKeyFile(dir + "/" + kServerPubFile).ok());

  ASSERT_TRUE(WriteFileAtomic(tmp.File("bad.key"), "public = short\n", 0600).ok());
  auto bad = ReadKeyFile(tmp.File("bad.key"));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("line 1"), std::string::npos) << bad.status().message();

  auto pair = GenerateCurveKeyPair();
  ASSERT_TRUE(pair.ok());
  auto other = GenerateCurveKeyPair();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(WriteFileAtomic(tmp.File("mixed.key"),
                              "public = " + other->public_key + "\nsecret = " + pair->secret_key + "\n", 0600)
                  .ok());
  EXPECT_EQ(ReadKeyFile(tmp.File("mixed.key")).status().code(), StatusCode::kInvalidArgument);

  ASSERT_TRUE(WriteFileAtomic(tmp.File("ak"),
                              "# comment\n\n" + pair->public_key + "  laptop of ann  # trailing\n" +
                                  other->public_key + "\n",
                              0600)
                  .ok());
  auto keys = ReadAuthorizedKeys(tmp.File("ak"));
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(*keys, (std::set<std::string>{pair->public_key, other->public_key}));
  ASSERT_TRUE(WriteFileAtomic(tmp.File("ak2"), pair->public_key + "\nnot-a-key\n", 0600).ok());
  auto bad_keys = ReadAuthorizedKeys(tmp.File("ak2"));
  EXPECT_EQ(bad_keys.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_keys.status().message().find("line 2"), std::string::npos) << bad_keys.status().message();

  auto missing = LoadClientCurve(tmp.File("nowhere"));
  EXPECT_EQ(missing.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("server.pub"), std::string::npos) << missing.status().message();
}

TEST_F(CurveKeysTest, BindsBeyondLoopbackOnlyWithCurve) {
  for (const char* ep : {"tcp://127.0.0.1:7600", "tcp://localhost:0", "tcp://[::1]:7600", "ipc:///tmp/x",
                         "inproc://a", "127.0.0.1:8600"}) {
    EXPECT_TRUE(IsLoopbackEndpoint(ep)) << ep;
    EXPECT_TRUE(CheckBindAllowed(ep, false, "--bind").ok()) << ep;
  }
  for (const char* ep : {"tcp://0.0.0.0:7600", "tcp://*:7600", "tcp://10.1.2.3:7600", "tcp://node1:7600",
                         "0.0.0.0:8600", "tcp://eth0:1"}) {
    EXPECT_FALSE(IsLoopbackEndpoint(ep)) << ep;
    Status s = CheckBindAllowed(ep, false, "--bind");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << ep;
    EXPECT_NE(s.message().find("auth: curve"), std::string::npos) << s.message();
    EXPECT_TRUE(CheckBindAllowed(ep, true, "--bind").ok()) << ep;
  }
}

TEST_F(CurveKeysTest, ClientKeysComeFromTheFlagOrTheRunFile) {
  testing::TempDir tmp;
  const std::string data = tmp.File("data");
  ASSERT_TRUE(EnsureClusterKeys(data + "/keys").ok());
  ::unsetenv(kKeysEnv);
  auto none = ResolveClientCurve("", data, "none");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->enabled);
  auto from_run_file = ResolveClientCurve("", data, "curve");
  ASSERT_TRUE(from_run_file.ok()) << from_run_file.status().ToString();
  EXPECT_TRUE(from_run_file->enabled);
  EXPECT_EQ(from_run_file->keys_dir, data + "/keys");
  auto flag = ResolveClientCurve(data + "/keys", "/elsewhere", "none");
  ASSERT_TRUE(flag.ok());
  EXPECT_TRUE(flag->enabled);
  auto no_keys = ResolveClientCurve("", tmp.File("other"), "curve");
  EXPECT_EQ(no_keys.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(no_keys.status().message().find("--keys"), std::string::npos) << no_keys.status().message();

  ASSERT_TRUE(WriteFileAtomic(tmp.File("run.json"), R"({"name": "storage", "auth": "curve"})").ok());
  EXPECT_EQ(RunFileAuth(tmp.File("run.json")), "curve");
  EXPECT_EQ(RunFileAuth(tmp.File("missing.json")), "none");
}

// A CURVE RpcServer with its ZAP handler, serving on a thread.
class CurveRpcTest : public ProcessCurveReset {
 protected:
  void SetUp() override {
    keys_ = tmp_.File("keys");
    ASSERT_TRUE(EnsureClusterKeys(keys_).ok());
    auto server = LoadServerCurve(keys_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    auto zap = ZapHandler::Start(ctx_, server->authorized_keys_path);
    ASSERT_TRUE(zap.ok()) << zap.status().ToString();
    zap_ = std::move(zap).value();
    SetProcessCurve(*server);
    server_ = std::make_unique<RpcServer>(ctx_, RpcServerOptions{});
    ASSERT_TRUE(server_->Bind().ok());
    server_->Handle("ping", [](const Request&) -> Result<json> { return json{{"pong", true}}; });
    server_->Handle("shutdown", [this](const Request&) -> Result<json> {
      server_->Stop();
      return json::object();
    });
    thread_ = std::thread([this] { (void)server_->Serve(); });
    SetProcessCurve(CurveSettings{});
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    if (zap_) zap_->Stop();
    ProcessCurveReset::TearDown();
  }

  // A call made with `settings` as this process's keys.
  Result<json> CallAs(const CurveSettings& settings, const std::string& type, double* seconds = nullptr) {
    SetProcessCurve(settings);
    RpcClient client(ctx_, server_->endpoint(), std::chrono::seconds(10));
    const auto start = Clock::now();
    auto r = client.Call(type);
    if (seconds) *seconds = std::chrono::duration<double>(Clock::now() - start).count();
    SetProcessCurve(CurveSettings{});
    return r;
  }

  CurveSettings Stranger() {
    CurveSettings s = LoadClientCurve(keys_).value();
    s.client = GenerateCurveKeyPair().value();
    return s;
  }

  testing::TempDir tmp_;
  std::string keys_;
  zmq::context_t ctx_;
  std::unique_ptr<ZapHandler> zap_;
  std::unique_ptr<RpcServer> server_;
  std::thread thread_;
};

TEST_F(CurveRpcTest, AuthorisedClientIsServed) {
  auto r = CallAs(LoadClientCurve(keys_).value(), "ping");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["pong"], true);
  EXPECT_GE(zap_->accepted(), 1);
}

TEST_F(CurveRpcTest, ClientWithoutKeysIsRefusedQuicklyWithTheFix) {
  double took = 0;
  auto r = CallAs(CurveSettings{}, "shutdown", &took);
  ASSERT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_NE(r.status().message().find("requires CURVE authentication"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("--keys"), std::string::npos);
  EXPECT_NE(r.status().message().find(server_->endpoint()), std::string::npos);
  EXPECT_LT(took, 1.5) << "a refusal must not wait for the connect timeout";
  EXPECT_FALSE(server_->stopping()) << "shutdown from an unauthenticated client ran";
  EXPECT_TRUE(CallAs(LoadClientCurve(keys_).value(), "ping").ok());
}

TEST_F(CurveRpcTest, UnauthorisedKeyIsRefusedUntilAddedToAuthorizedKeys) {
  const CurveSettings stranger = Stranger();
  double took = 0;
  auto r = CallAs(stranger, "shutdown", &took);
  ASSERT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_NE(r.status().message().find("authorized_keys"), std::string::npos) << r.status().message();
  EXPECT_LT(took, 1.5);
  EXPECT_GE(zap_->refused(), 1);
  EXPECT_FALSE(server_->stopping());

  // Authorising it takes effect for the next connection, without a restart.
  std::ofstream(keys_ + "/" + kAuthorizedKeysFile, std::ios::app) << stranger.client.public_key << " stranger\n";
  auto again = CallAs(stranger, "ping");
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST_F(CurveRpcTest, WrongServerKeyFailsWithinTheConnectTimeout) {
  CurveSettings wrong = LoadClientCurve(keys_).value();
  wrong.server_public_key = GenerateCurveKeyPair()->public_key;
  double took = 0;
  auto r = CallAs(wrong, "ping", &took);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(took, 5.0);
  EXPECT_NE(r.status().message().find(server_->endpoint()), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("server.pub"), std::string::npos) << r.status().message();
}

TEST(CurvePlainServerTest, ClientWithKeysIsToldTheServiceDoesNotUseCurve) {
  testing::TempDir tmp;
  ASSERT_TRUE(EnsureClusterKeys(tmp.File("keys")).ok());
  zmq::context_t ctx;
  RpcServer server(ctx, RpcServerOptions{});
  ASSERT_TRUE(server.Bind().ok());
  server.Handle("ping", [](const Request&) -> Result<json> { return json::object(); });
  std::thread t([&] { (void)server.Serve(); });
  SetProcessCurve(LoadClientCurve(tmp.File("keys")).value());
  RpcClient client(ctx, server.endpoint());
  auto r = client.Call("ping");
  SetProcessCurve(CurveSettings{});
  server.Stop();
  t.join();
  ASSERT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_NE(r.status().message().find("does not use CURVE"), std::string::npos) << r.status().message();
}

TEST(CurveServerTest, RefusesToServeCurveWithoutAZapHandler) {
  testing::TempDir tmp;
  ASSERT_TRUE(EnsureClusterKeys(tmp.File("keys")).ok());
  zmq::context_t ctx;
  SetProcessCurve(LoadServerCurve(tmp.File("keys")).value());
  RpcServer server(ctx, RpcServerOptions{});
  Status s = server.Bind();
  SetProcessCurve(CurveSettings{});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("ZAP"), std::string::npos) << s.message();
}

TEST(ZapHandlerTest, OnePerContextAndStopsPromptly) {
  testing::TempDir tmp;
  zmq::context_t ctx;
  auto first = ZapHandler::Start(ctx, tmp.File("authorized_keys"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // One per context: a second would race the first for the requests.
  auto second = ZapHandler::Start(ctx, tmp.File("authorized_keys"));
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  const auto start = Clock::now();
  (*first)->Stop();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 1.0);
  (*first)->Stop();  // idempotent
}

}  // namespace
}  // namespace gantry
