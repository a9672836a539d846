#include "common/rpc.h"

#include <gtest/gtest.h>

#include <thread>

namespace gantry {
namespace {

class RpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<RpcServer>(ctx_, RpcServerOptions{"tcp://127.0.0.1:*", 64 * 1024});
    ASSERT_TRUE(server_->Bind().ok());
    server_->Handle("echo", [](const Request& r) -> Result<json> { return r.body; });
    server_->Handle("fail", [](const Request&) -> Result<json> { return Status::NotFound("nothing here"); });
    server_->Handle("throw", [](const Request&) -> Result<json> { throw std::runtime_error("boom"); });
    thread_ = std::thread([this] { (void)server_->Serve(); });
  }
  void TearDown() override {
    server_->Stop();
    thread_.join();
  }
  // Sends raw frames on a DEALER and returns the decoded reply (or error).
  Result<Reply> Raw(const std::string& payload, int timeout_ms = 5000) {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(server_->endpoint());
    s.send(zmq::message_t(), zmq::send_flags::sndmore);
    s.send(zmq::buffer(payload), zmq::send_flags::none);
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms));
    if (!(item.revents & ZMQ_POLLIN)) return Status::DeadlineExceeded("no reply");
    zmq::message_t empty, body;
    (void)s.recv(empty);
    (void)s.recv(body);
    return DecodeReply(body.to_string_view());
  }

  zmq::context_t ctx_;
  std::unique_ptr<RpcServer> server_;
  std::thread thread_;
};

TEST_F(RpcTest, CallsReachHandlers) {
  RpcClient c(ctx_, server_->endpoint());
  auto r = c.Call("echo", {{"x", 42}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["x"], 42);
  auto f = c.Call("fail");
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(f.status().message(), "nothing here");
}

TEST_F(RpcTest, UnknownTypeAndThrowingHandlerGetErrorReplies) {
  RpcClient c(ctx_, server_->endpoint());
  auto u = c.Call("nope");
  EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(u.status().message().find("unknown message type 'nope'"), std::string::npos);
  auto t = c.Call("throw");
  EXPECT_EQ(t.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(c.Call("echo", {{"still", "alive"}}).ok());
}

TEST_F(RpcTest, MalformedPayloadGetsErrorReplyAndServerKeepsServing) {
  auto r = Raw("\xc1 definitely not msgpack");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status.code(), StatusCode::kInvalidArgument);
  RpcClient c(ctx_, server_->endpoint());
  EXPECT_TRUE(c.Call("echo").ok());
}

TEST_F(RpcTest, OversizedMessageIsDroppedAndServerKeepsServing) {
  // Above the 64 KiB limit: ZeroMQ drops the peer, no reply comes.
  auto r = Raw(std::string(200 * 1024, 'x'), 1000);
  EXPECT_FALSE(r.ok());
  RpcClient c(ctx_, server_->endpoint());
  EXPECT_TRUE(c.Call("echo").ok());
}

TEST_F(RpcTest, BadFramingIsDropped) {
  zmq::socket_t s(ctx_, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(server_->endpoint());
  // No empty delimiter frame: not addressable, dropped.
  s.send(zmq::str_buffer("garbage"), zmq::send_flags::none);
  RpcClient c(ctx_, server_->endpoint());
  EXPECT_TRUE(c.Call("echo").ok());
}

TEST(RpcClientTest, NoServerMeansUnavailable) {
  zmq::context_t ctx;
  RpcClient c(ctx, "tcp://127.0.0.1:1", std::chrono::milliseconds(200));
  auto r = c.Call("ping");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace gantry
