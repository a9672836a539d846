// MonitorService on real sockets (loopback, free ports), served on a thread,
// writing on its writer thread as gantry-monitor does.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include "common/ingest_wire.h"
#include "monitor/monitor_service.h"
#include "tests/monitor/test_support.h"

namespace gantry::monitor {
namespace {

using testing::Frame;
using testing::MetricsBody;
using testing::WaitFor;

class MonitorSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = MetricsStore::Open(dir_.path() + "/monitor.db");
    ASSERT_TRUE(store.ok());
    MonitorOptions options;
    options.ingest_bind = "tcp://127.0.0.1:0";
    options.feed_bind = "tcp://127.0.0.1:0";
    service_ = std::make_unique<MonitorService>(ctx_, std::move(store).value(), clock_, options);
    // As gantry-monitor runs it: commits on the writer thread.
    auto writer = MetricsStore::Open(dir_.path() + "/monitor.db");
    ASSERT_TRUE(writer.ok());
    service_->WriteOnThread(std::move(writer).value());
    server_ = std::make_unique<RpcServer>(ctx_, RpcServerOptions{"tcp://127.0.0.1:0", kDefaultMaxMessageBytes,
                                                                 kFlushTick});
    service_->Attach(*server_);
    ASSERT_TRUE(service_->Bind().ok());
    ASSERT_TRUE(server_->Bind().ok());
    thread_ = std::thread([this] { (void)server_->Serve(); });
    client_ = std::make_unique<RpcClient>(ctx_, server_->endpoint(), std::chrono::seconds(5));
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
  }

  zmq::socket_t Push() {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(service_->ingest_endpoint());
    return s;
  }
  zmq::socket_t Sub(const std::string& topic) {
    zmq::socket_t s(ctx_, zmq::socket_type::sub);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::subscribe, topic);
    s.connect(service_->feed_endpoint());
    return s;
  }
  // Receives one [topic, payload] message within `ms`.
  static std::optional<std::pair<std::string, json>> Receive(zmq::socket_t& sub, int ms) {
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(ms));
    if (!(item.revents & ZMQ_POLLIN)) return std::nullopt;
    zmq::message_t topic, payload;
    (void)sub.recv(topic);
    EXPECT_TRUE(topic.more());
    (void)sub.recv(payload);
    auto j = ParseMsgpack(payload.to_string_view());
    EXPECT_TRUE(j.ok());
    return std::make_pair(topic.to_string(), j.ok() ? *j : json());
  }
  // Points of `job` so far; none (rather than a failure) while the monitor
  // does not know the job yet.
  json PointsOf(const std::string& job) {
    auto r = client_->Call("get_metrics", {{"job_id", job}});
    if (r.status().code() == StatusCode::kNotFound) return json::array();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? (*r)["points"] : json::array();
  }
  json Call(const std::string& type, const json& body) {
    auto r = client_->Call(type, body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : json::object();
  }

  testing::TempDir dir_;
  SystemClock clock_;
  zmq::context_t ctx_;
  std::unique_ptr<MonitorService> service_;
  std::unique_ptr<RpcServer> server_;
  std::unique_ptr<RpcClient> client_;
  std::thread thread_;
};

TEST_F(MonitorSocketTest, PushedPointsAreQueryableInOrder) {
  auto push = Push();
  for (int step : {2, 0, 1}) {
    double loss = step == 1 ? std::numeric_limits<double>::quiet_NaN() : step;
    push.send(zmq::buffer(Frame("metrics", MetricsBody("j-push", step, {{"loss", loss}}))));
  }
  json points;
  ASSERT_TRUE(WaitFor([&] {
    points = PointsOf("j-push");
    return points.size() == 3;
  }));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(points[i]["step"], i);
  EXPECT_TRUE(std::isnan(points[1]["values"]["loss"].get<double>()));
}

TEST_F(MonitorSocketTest, FeedCarriesPointsPublishedAfterSubscribing) {
  auto sub = Sub("job/j-feed");
  auto push = Push();
  // A subscription takes a moment to reach the publisher: publish until one
  // arrives.
  std::optional<std::pair<std::string, json>> got;
  ASSERT_TRUE(WaitFor([&] {
    push.send(zmq::buffer(Frame("metrics", MetricsBody("j-other", 1, {{"loss", 1}}))));
    push.send(zmq::buffer(Frame("metrics", MetricsBody("j-feed", 7, {{"loss", 0.25}}))));
    got = Receive(sub, 20);
    return got.has_value();
  }));
  EXPECT_EQ(got->first, "job/j-feed");  // j-other is filtered out
  EXPECT_EQ(got->second["type"], "metrics");
  EXPECT_EQ(got->second["body"]["job_id"], "j-feed");
  EXPECT_EQ(got->second["body"]["step"], 7);
  EXPECT_EQ(got->second["body"]["total_steps"], 100);
}

TEST_F(MonitorSocketTest, JobStateIsPublishedAndStored) {
  auto sub = Sub("job/j-ev");
  auto push = Push();
  ASSERT_TRUE(WaitFor([&] {  // subscription is live once a probe arrives
    push.send(zmq::buffer(Frame("metrics", MetricsBody("j-ev", 0, {{"probe", 1}}))));
    return Receive(sub, 20).has_value();
  }));
  push.send(zmq::buffer(Frame("job_state", {{"job_id", "j-ev"}, {"state", "RUNNING"}, {"attempt", 1},
                                            {"time", 12.5}})));
  std::optional<std::pair<std::string, json>> got;
  ASSERT_TRUE(WaitFor([&] {
    got = Receive(sub, 20);
    return got && got->second["type"] == "job_state";
  }));
  EXPECT_EQ(got->second["body"]["state"], "RUNNING");
  json events = Call("get_events", {{"job_id", "j-ev"}})["events"];
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["state"], "RUNNING");
  EXPECT_EQ(events[0]["attempt"], 1);
}

TEST_F(MonitorSocketTest, BadInputDoesNotStopService) {
  auto bad = Push();
  bad.send(zmq::buffer(std::string("garbage")));
  bad.send(zmq::buffer(Frame("nonsense", json::object())));
  bad.send(zmq::buffer(std::string("part one")), zmq::send_flags::sndmore);
  bad.send(zmq::buffer(Frame("metrics", MetricsBody("j-bad", 1, {{"loss", 1}}))));  // multipart
  {
    auto big = Push();  // ZeroMQ drops the frame and this connection
    big.send(zmq::buffer(std::string(2 << 20, 'x')));
  }
  // The api answers a malformed request with an error reply...
  zmq::socket_t raw(ctx_, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(server_->endpoint());
  raw.send(zmq::buffer(std::string("no delimiter, dropped")));
  raw.send(zmq::message_t(), zmq::send_flags::sndmore);
  raw.send(zmq::buffer(std::string("\x81\xa1v")), zmq::send_flags::none);  // truncated map
  zmq::pollitem_t item{raw.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(5000));
  ASSERT_TRUE(item.revents & ZMQ_POLLIN);
  zmq::message_t delim, reply;
  (void)raw.recv(delim);
  (void)raw.recv(reply);
  auto rep = DecodeReply(reply.to_string_view());
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->status.code(), StatusCode::kInvalidArgument);
  // ...and counts the undelimited one, handled before it, as dropped.
  EXPECT_EQ(server_->messages_dropped(), 1);

  // ...and good traffic still works afterwards.
  auto good = Push();
  good.send(zmq::buffer(Frame("metrics", MetricsBody("j-good", 1, {{"loss", 1}}))));
  ASSERT_TRUE(WaitFor([&] { return PointsOf("j-good").size() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return Call("stats", json::object())["messages_dropped"] == 3; }));
  // The multipart message's point was dropped whole: its job is unknown.
  EXPECT_EQ(client_->Call("get_metrics", {{"job_id", "j-bad"}}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Call("stats", json::object())["points_ingested"], 1);
}

// A sender of sequenced points hears, on its own connection, up to which
// seq everything is committed; a hole holds the ack back until re-sent.
TEST_F(MonitorSocketTest, SequencedPointsAreAcknowledgedOnTheSameConnection) {
  auto dealer = Push();
  auto send = [&](int64_t seq) {
    json b = MetricsBody("j-ack", seq * 10, {{"loss", 1.0}});
    b["seq"] = seq;
    dealer.send(zmq::buffer(Frame("metrics", b)));
  };
  // The latest ack within 5 s, or -1.
  auto ack_reaching = [&](int64_t want) {
    int64_t got = -1;
    (void)WaitFor([&] {
      zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(20));
      zmq::message_t m;
      while (dealer.recv(m, zmq::recv_flags::dontwait)) {
        auto ack = DecodeIngestAck(m.to_string_view());
        EXPECT_TRUE(ack.ok()) << ack.status().ToString();
        if (ack.ok()) {
          EXPECT_EQ(ack->job_id, "j-ack");
          got = ack->seq;
        }
      }
      return got == want;
    });
    return got;
  };
  send(1);
  send(3);  // 2 was lost
  EXPECT_EQ(ack_reaching(1), 1);
  send(2);
  send(3);  // a repeat, acknowledged again
  EXPECT_EQ(ack_reaching(3), 3);
  EXPECT_EQ(PointsOf("j-ack").size(), 3u);
  EXPECT_EQ(Call("stats", json::object())["points_repeated"], 1);
}

}  // namespace
}  // namespace gantry::monitor
