#include "common/rpc.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/support/test_support.h"

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
    server_->Handle("count", [this](const Request&) -> Result<json> {
      runs_.fetch_add(1);
      return json::object();
    });
    thread_ = std::thread([this] { (void)server_->Serve(); });
  }
  void TearDown() override {
    server_->Stop();
    thread_.join();
  }
  // A DEALER connected to the server, for hand-made frames.
  zmq::socket_t Dealer() {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(server_->endpoint());
    return s;
  }
  // Sends `frames` (the empty delimiter first unless `delimiter` is false).
  static void Send(zmq::socket_t& s, const std::vector<std::string>& frames, bool delimiter = true) {
    if (delimiter) s.send(zmq::message_t(), zmq::send_flags::sndmore);
    for (size_t i = 0; i < frames.size(); ++i) {
      s.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  // The next reply on `s`, decoded; deadline_exceeded when none comes.
  static Result<Reply> Receive(zmq::socket_t& s, int timeout_ms = 5000) {
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms));
    if (!(item.revents & ZMQ_POLLIN)) return Status::DeadlineExceeded("no reply");
    std::vector<zmq::message_t> frames;
    zmq::message_t m;
    do {
      if (!s.recv(m)) return Status::Internal("recv failed");
      frames.push_back(std::move(m));
    } while (frames.back().more());
    if (frames.size() != 2 || frames[0].size() != 0) {
      return Status::Internal("reply has " + std::to_string(frames.size()) + " frames, want [empty, reply]");
    }
    return DecodeReply(frames[1].to_string_view());
  }
  // Sends one payload on a fresh DEALER and returns the decoded reply.
  Result<Reply> Raw(const std::string& payload, int timeout_ms = 5000) {
    auto s = Dealer();
    Send(s, {payload});
    return Receive(s, timeout_ms);
  }

  zmq::context_t ctx_;
  std::unique_ptr<RpcServer> server_;
  std::thread thread_;
  std::atomic<int> runs_{0};  // calls of "count"
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

TEST_F(RpcTest, OversizedMessageIsDroppedAndServerKeepsServing) {
  // Above the 64 KiB limit: ZeroMQ drops the peer, no reply comes.
  auto r = Raw(std::string(200 * 1024, 'x'), 1000);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(server_->messages_dropped(), 0) << "the server never saw it";
  RpcClient c(ctx_, server_->endpoint());
  EXPECT_TRUE(c.Call("echo").ok());
}

TEST_F(RpcTest, ErrorRepliesEchoTheRequestId) {
  struct Case {
    json request;
    std::string id;     // the id the error reply must carry
    std::string error;  // part of its message
  };
  const std::vector<Case> cases = {
      {{{"v", 1}, {"type", "nope"}, {"id", "r-unknown"}}, "r-unknown", "unknown message type 'nope'"},
      {{{"v", 2}, {"type", "echo"}, {"id", "r-version"}}, "r-version", "protocol version 2"},
      {{{"type", "echo"}, {"id", "r-no-v"}}, "r-no-v", "'v'"},
      {{{"v", 1}, {"id", "r-no-type"}}, "r-no-type", "'type'"},
      {{{"v", 1}, {"type", 7}, {"id", "r-type-int"}}, "r-type-int", "'type'"},
      {{{"v", 1}, {"type", "echo"}, {"id", "r-body"}, {"body", 5}}, "r-body", "'body'"},
      {{{"v", 1}, {"type", "echo"}, {"id", "r-auth"}, {"auth", 5}, {"body", json::object()}}, "r-auth", "'auth'"},
      // Not decodable up to a string id: the reply's id is empty.
      {{{"v", 1}, {"type", "echo"}, {"id", 12}}, "", "'id'"},
      {json::array({1, 2}), "", "map"},
  };
  for (const auto& c : cases) {
    auto r = Raw(ToMsgpack(c.request));
    ASSERT_TRUE(r.ok()) << c.request.dump() << ": " << r.status().ToString();
    EXPECT_EQ(r->status.code(), StatusCode::kInvalidArgument) << c.request.dump();
    EXPECT_EQ(r->id, c.id) << c.request.dump();
    EXPECT_NE(r->status.message().find(c.error), std::string::npos)
        << c.request.dump() << ": " << r->status.message();
  }
  // A handler's own error echoes the id too.
  auto f = Raw(EncodeRequest("fail", "r-fail", "", json::object()));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->status.code(), StatusCode::kNotFound);
  EXPECT_EQ(f->id, "r-fail");
}

TEST_F(RpcTest, ExtraTrailingFramesGetAnErrorReplyAndAreNotRun) {
  auto s = Dealer();
  Send(s, {EncodeRequest("count", "r-two", "", json::object()), "trailing"});
  auto two = Receive(s);
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_EQ(two->status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(two->id, "r-two");
  EXPECT_NE(two->status.message().find("request has 2 frames"), std::string::npos) << two->status.message();

  // More frames than the server keeps: still one reply, with the true count.
  std::vector<std::string> many = {EncodeRequest("count", "r-many", "", json::object())};
  for (int i = 0; i < 39; ++i) many.push_back("x");
  Send(s, many);
  auto forty = Receive(s);
  ASSERT_TRUE(forty.ok()) << forty.status().ToString();
  EXPECT_EQ(forty->status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(forty->id, "r-many");
  EXPECT_NE(forty->status.message().find("request has 40 frames"), std::string::npos) << forty->status.message();

  // The same socket goes on working, and only the well-formed call ran.
  Send(s, {EncodeRequest("count", "r-one", "", json::object())});
  auto one = Receive(s);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_TRUE(one->status.ok()) << one->status.ToString();
  EXPECT_EQ(one->id, "r-one");
  EXPECT_EQ(runs_.load(), 1);
  EXPECT_EQ(server_->messages_dropped(), 0);
}

// Every kind of garbage has a defined fate: an error reply with the right
// code and id, or a drop the server counts. Then the server still answers.
TEST_F(RpcTest, GarbageIsAnsweredOrCountedAsDropped) {
  auto s = Dealer();
  const std::vector<std::string> answered = {
      "",                                    // empty request frame
      "\xc1 definitely not msgpack",         // reserved type byte
      std::string(100, '\x91') + "\x01",     // nested deeper than 32 levels
      EncodeRequest("echo", "r", "", json::object()) + "x",  // trailing bytes
      ToMsgpack(42),                         // not a map
  };
  for (const auto& payload : answered) {
    Send(s, {payload});
    auto r = Receive(s);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status.code(), StatusCode::kInvalidArgument) << r->status.ToString();
    EXPECT_EQ(r->id, "");
  }
  EXPECT_EQ(server_->messages_dropped(), 0);

  // Not addressable: no empty delimiter, or nothing after it. Dropped.
  Send(s, {"garbage"}, /*delimiter=*/false);
  Send(s, {"one", "two", "three"}, /*delimiter=*/false);
  s.send(zmq::message_t(), zmq::send_flags::none);  // a lone empty frame
  ASSERT_TRUE(testing::WaitFor([&] { return server_->messages_dropped() == 3; }))
      << server_->messages_dropped();
  // Replies on one connection keep their order, so the next reply on this
  // socket being the ping's shows that none of the drops was answered.
  Send(s, {EncodeRequest("echo", "after-drops", "", json::object())});
  auto after = Receive(s);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(after->status.ok());
  EXPECT_EQ(after->id, "after-drops");

  RpcClient c(ctx_, server_->endpoint());
  EXPECT_TRUE(c.Call("echo", {{"still", "alive"}}).ok());
  EXPECT_EQ(server_->messages_dropped(), 3);
}

TEST(RpcClientTest, NoServerMeansUnavailable) {
  zmq::context_t ctx;
  RpcClient c(ctx, "tcp://127.0.0.1:1", std::chrono::milliseconds(200));
  auto r = c.Call("ping");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace gantry
