// MetricsSpool (bound, spill file, ack trimming, resend order) and
// MetricsPublisher against a stand-in monitor ROUTER that acknowledges.
#include "worker/metrics_spool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/ingest_wire.h"
#include "tests/support/test_support.h"
#include "worker/metrics_publisher.h"

namespace gantry::worker {
namespace {

std::string F(int64_t seq) { return "frame-" + std::to_string(seq); }

// Sends everything due and returns the seqs sent, in order.
std::vector<int64_t> SendAll(MetricsSpool& s) {
  std::vector<int64_t> out;
  while (s.NextToSend() != nullptr) {
    EXPECT_EQ(*s.NextToSend(), F(s.NextToSendSeq()));
    out.push_back(s.NextToSendSeq());
    s.MarkSent();
  }
  return out;
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

TEST(MetricsSpool, WithoutSpillMemoryIsTheBound) {
  MetricsSpool s({/*memory_points=*/3, /*max_points=*/100, ""});
  for (int64_t i = 1; i <= 3; ++i) EXPECT_TRUE(s.Add(F(s.next_seq())));
  EXPECT_TRUE(s.Full());
  EXPECT_FALSE(s.Add(F(s.next_seq())));
  EXPECT_EQ(s.next_seq(), 4);  // a refused point takes no seq: no holes
  EXPECT_EQ(s.size(), 3u);
  s.Ack(1);
  EXPECT_FALSE(s.Full());
  EXPECT_TRUE(s.Add(F(4)));
}

TEST(MetricsSpool, AckTrimsAndRewindResendsTheRestInOrder) {
  MetricsSpool s({8, 8, ""});
  for (int64_t i = 1; i <= 5; ++i) ASSERT_TRUE(s.Add(F(i)));
  EXPECT_EQ(SendAll(s), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(s.HasUnackedSent());
  EXPECT_TRUE(s.Ack(2));
  EXPECT_FALSE(s.Ack(1));  // older than the last ack
  EXPECT_EQ(s.acked(), 2);
  EXPECT_EQ(s.size(), 3u);
  EXPECT_TRUE(SendAll(s).empty());  // nothing new
  s.Rewind();
  EXPECT_EQ(SendAll(s), (std::vector<int64_t>{3, 4, 5}));
  ASSERT_TRUE(s.Add(F(6)));
  EXPECT_EQ(SendAll(s), (std::vector<int64_t>{6}));
  s.Ack(6);
  EXPECT_TRUE(s.empty());
  EXPECT_FALSE(s.HasUnackedSent());
}

TEST(MetricsSpool, SpillsBeyondMemoryAndReadsBackInOrder) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/spool.bin";
  {
    MetricsSpool s({/*memory_points=*/2, /*max_points=*/6, path});
    for (int64_t i = 1; i <= 6; ++i) ASSERT_TRUE(s.Add(F(i))) << i;
    EXPECT_FALSE(s.Add(F(7)));  // the bound counts memory and file
    EXPECT_EQ(s.in_memory(), 2u);
    EXPECT_EQ(s.spilled(), 4u);
    EXPECT_GT(FileSize(path), 0);
    // Only memory is sent; acks make room for the file's entries, in order.
    EXPECT_EQ(SendAll(s), (std::vector<int64_t>{1, 2}));
    s.Ack(1);
    EXPECT_EQ(SendAll(s), (std::vector<int64_t>{3}));
    s.Ack(3);
    EXPECT_EQ(SendAll(s), (std::vector<int64_t>{4, 5}));
    s.Rewind();
    EXPECT_EQ(SendAll(s), (std::vector<int64_t>{4, 5}));
    s.Ack(5);
    EXPECT_EQ(s.spilled(), 0u);
    EXPECT_EQ(FileSize(path), 0);  // drained: the file starts over
    EXPECT_EQ(SendAll(s), (std::vector<int64_t>{6}));
    // New entries go to memory first again.
    ASSERT_TRUE(s.Add(F(7)));
    EXPECT_EQ(s.in_memory(), 2u);
    EXPECT_TRUE(s.spill_status().ok());
  }
  EXPECT_EQ(FileSize(path), -1);  // removed with the spool
}

TEST(MetricsSpool, AnUnwritableSpillFileRefusesThePoint) {
  MetricsSpool s({1, 10, "/nonexistent-dir/spool.bin"});
  ASSERT_TRUE(s.Add(F(1)));
  EXPECT_FALSE(s.Add(F(2)));
  EXPECT_FALSE(s.spill_status().ok());
  EXPECT_EQ(s.next_seq(), 2);
}

// A monitor stand-in: a ROUTER that records the seqs it gets and acks
// what the test says.
class FakeMonitor {
 public:
  explicit FakeMonitor(zmq::context_t& ctx) : router_(ctx, zmq::socket_type::router) {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }
  // Receives until `n` frames arrived in all (5 s at most); returns all seqs.
  std::vector<int64_t> Receive(size_t n) {
    (void)testing::WaitFor([&] {
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(20));
      zmq::message_t id, m;
      while (router_.recv(id, zmq::recv_flags::dontwait)) {
        (void)router_.recv(m);
        id_ = id.to_string();
        auto j = ParseMsgpack(m.to_string_view());
        EXPECT_TRUE(j.ok());
        seqs_.push_back((*j)["body"].value("seq", int64_t{0}));
      }
      return seqs_.size() >= n;
    });
    return seqs_;
  }
  void Ack(int64_t seq) {
    router_.send(zmq::buffer(id_), zmq::send_flags::sndmore);
    router_.send(zmq::buffer(EncodeIngestAck({"j", 1, 0, seq})));
  }

 private:
  zmq::socket_t router_;
  std::string endpoint_;
  std::string id_;
  std::vector<int64_t> seqs_;
};

MetricsPoint Point(int64_t step) {
  MetricsPoint p;
  p.step = step;
  p.values = {{"loss", 1.0}};
  return p;
}

TEST(MetricsPublisher, ResendsWhatTheMonitorDidNotAcknowledgeInOrder) {
  zmq::context_t ctx;
  FakeMonitor monitor(ctx);
  ManualClock clock;
  MetricsPublisherOptions o;
  o.resend_after = std::chrono::seconds(2);
  o.close_timeout = std::chrono::milliseconds(0);
  MetricsPublisher pub(ctx, monitor.endpoint(), {"j", 1, 0, 1}, o, &clock);
  for (int64_t step = 1; step <= 3; ++step) ASSERT_TRUE(pub.Publish(Point(step)));
  EXPECT_EQ(monitor.Receive(3), (std::vector<int64_t>{1, 2, 3}));
  monitor.Ack(1);  // 2 and 3 "lost in a monitor restart"
  ASSERT_TRUE(testing::WaitFor([&] {
    pub.Pump();
    return pub.acked() == 1;
  }));
  EXPECT_EQ(pub.unacknowledged(), 2u);
  clock.Advance(std::chrono::milliseconds(1900));
  pub.Pump();
  EXPECT_EQ(pub.resent(), 0);  // not yet
  clock.Advance(std::chrono::milliseconds(200));
  ASSERT_TRUE(pub.Publish(Point(4)));
  EXPECT_EQ(monitor.Receive(6), (std::vector<int64_t>{1, 2, 3, 2, 3, 4}));
  EXPECT_EQ(pub.resent(), 2);
  monitor.Ack(4);
  ASSERT_TRUE(testing::WaitFor([&] {
    pub.Pump();
    return pub.unacknowledged() == 0;
  }));
  EXPECT_EQ(pub.Close(), 0);
}

TEST(MetricsPublisher, AFullSpoolDropsAndCountsNewPoints) {
  zmq::context_t ctx;
  FakeMonitor monitor(ctx);
  MetricsPublisherOptions o;
  o.spool = {2, 2, ""};
  o.close_timeout = std::chrono::milliseconds(0);
  MetricsPublisher pub(ctx, monitor.endpoint(), {"j", 1, 0, 1}, o);
  EXPECT_TRUE(pub.Publish(Point(1)));
  EXPECT_TRUE(pub.Publish(Point(2)));
  EXPECT_FALSE(pub.Publish(Point(3)));
  EXPECT_EQ(pub.dropped(), 1);
  EXPECT_EQ(monitor.Receive(2), (std::vector<int64_t>{1, 2}));
  monitor.Ack(2);
  ASSERT_TRUE(testing::WaitFor([&] {
    pub.Pump();
    return pub.unacknowledged() == 0;
  }));
  EXPECT_TRUE(pub.Publish(Point(4)));
  EXPECT_EQ(monitor.Receive(3), (std::vector<int64_t>{1, 2, 3}));  // seq 3: no hole
}

TEST(MetricsPublisher, APeerThatNeverAcksIsNotWaitedFor) {
  zmq::context_t ctx;
  FakeMonitor monitor(ctx);
  ManualClock clock;
  MetricsPublisherOptions o;
  o.resend_after = std::chrono::milliseconds(1);
  MetricsPublisher pub(ctx, monitor.endpoint(), {"j", 1, 0, 1}, o, &clock);
  ASSERT_TRUE(pub.Publish(Point(1)));
  clock.Advance(std::chrono::seconds(10));
  ASSERT_TRUE(pub.Publish(Point(2)));
  EXPECT_EQ(monitor.Receive(2), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(pub.resent(), 0);  // no acks ever: no resends
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(pub.Close(), 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

}  // namespace
}  // namespace gantry::worker
