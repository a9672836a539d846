// MonitorReporter on a ManualClock with a fake sender: reports every
// interval, the wire round trip, samples, and the bounds that keep the
// request path from waiting on an absent monitor.
#include "serving/monitor_reporter.h"

#include <gtest/gtest.h>

#include <thread>
#include <zmq.hpp>

#include "common/protocol.h"

namespace gantry::serving {
namespace {

// Takes frames while `up`; keeps what it took.
class FakeSender final : public FrameSender {
 public:
  bool TrySend(const std::string& frame) override {
    if (!*up) return false;
    sent->push_back(frame);
    return true;
  }
  std::shared_ptr<bool> up = std::make_shared<bool>(true);
  std::shared_ptr<std::vector<std::string>> sent = std::make_shared<std::vector<std::string>>();
};

struct Decoded {
  std::string type;
  json body;
};

Decoded Decode(const std::string& frame) {
  auto j = ParseMsgpack(frame);
  EXPECT_TRUE(j.ok());
  if (!j.ok()) return {};
  return {(*j)["type"].get<std::string>(), (*j)["body"]};
}

class ReporterTest : public ::testing::Test {
 protected:
  std::unique_ptr<MonitorReporter> Make(ReporterOptions o) {
    o.deployment = "fashion-prod";
    o.clock = &clock_;
    o.seed = 7;
    std::vector<ReportedModel> models = {{"fashion", [this] { return version_; }, [this] { return metrics_.Snapshot(); }}};
    auto r = MonitorReporter::Create(o, std::move(models), std::make_unique<FakeSender>(sender_));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::vector<Decoded> Sent(const std::string& type) const {
    std::vector<Decoded> out;
    for (const auto& f : *sender_.sent) {
      Decoded d = Decode(f);
      if (d.type == type) out.push_back(std::move(d));
    }
    return out;
  }

  ManualClock clock_;
  FakeSender sender_;
  std::string version_ = "3";
  ServingMetrics metrics_{ServingMetricsOptions{}};
};

TEST_F(ReporterTest, ReportsEachModelOncePerIntervalOnTheInjectedClock) {
  auto r = Make({});
  metrics_.RecordSuccess(0.002);
  metrics_.RecordSuccess(0.004);
  metrics_.RecordError(ApiError::BadRequest(ErrorKind::kNonFinite, "inputs[0].data[0]: NaN"), 1e-4);
  metrics_.RecordBatch(2);
  metrics_.feedback().RecordPrediction("a", 1);
  ASSERT_TRUE(metrics_.feedback().RecordFeedback("a", 1).ok());
  r->Tick();  // the first tick reports at once
  r->Tick();  // not due yet
  clock_.Advance(std::chrono::milliseconds(999));
  r->Tick();
  ASSERT_EQ(Sent(kIngestServingMetricsType).size(), 1u);
  clock_.Advance(std::chrono::milliseconds(1));
  version_ = "4";
  r->Tick();
  auto reports = Sent(kIngestServingMetricsType);
  ASSERT_EQ(reports.size(), 2u);

  // What the monitor decodes is what the server counted.
  auto m = DecodeServingMetricsBody(reports[0].body);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->deployment, "fashion-prod");
  EXPECT_EQ(m->model, "fashion");
  EXPECT_EQ(m->version, "3");
  EXPECT_EQ(m->seq, 1);
  EXPECT_EQ(m->requests, 3u);
  EXPECT_EQ(m->succeeded, 2u);
  EXPECT_EQ(m->errors_by_code.at(400), 1u);
  EXPECT_EQ(m->errors_by_kind.at("non_finite"), 1u);
  EXPECT_EQ(m->non_finite, 1u);
  EXPECT_EQ(m->latency_seconds.count, 3u);
  EXPECT_EQ(m->latency_seconds.counts.size(), m->latency_seconds.bounds.size() + 1);
  EXPECT_EQ(m->batch_size.count, 1u);
  ASSERT_TRUE(m->accuracy.has_value());
  EXPECT_DOUBLE_EQ(*m->accuracy, 1.0);
  ASSERT_EQ(m->per_class.size(), 1u);
  EXPECT_EQ(m->per_class[0].label, 1);
  EXPECT_DOUBLE_EQ(m->per_class[0].precision.value(), 1.0);
  auto second = DecodeServingMetricsBody(reports[1].body);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->version, "4");  // a hot reload shows in the next report
  EXPECT_EQ(second->seq, 2);
  EXPECT_DOUBLE_EQ(second->time - m->time, 1.0);
}

TEST_F(ReporterTest, AbsentMonitorFillsABoundedQueueThenDropsAndCounts) {
  ReporterOptions o;
  o.max_queued_frames = 4;
  auto r = Make(o);
  *sender_.up = false;
  for (int i = 0; i < 10; ++i) {
    r->Tick();
    clock_.Advance(std::chrono::seconds(1));
  }
  ReporterStats s = r->stats();
  EXPECT_EQ(s.frames_queued, 4u);
  EXPECT_EQ(s.reports_dropped, 6u);
  EXPECT_EQ(s.reports_sent, 0u);
  EXPECT_TRUE(sender_.sent->empty());
  // The monitor is back: the queue goes out, oldest first, and the next
  // report says how many were dropped.
  *sender_.up = true;
  r->Tick();
  auto reports = Sent(kIngestServingMetricsType);
  ASSERT_EQ(reports.size(), 5u);
  EXPECT_EQ(reports[0].body["seq"], 1);
  EXPECT_EQ(reports[3].body["seq"], 4);
  EXPECT_EQ(reports[4].body["seq"], 11);
  EXPECT_EQ(reports[4].body["reporter"]["reports_dropped"], 6);
  EXPECT_EQ(r->stats().frames_queued, 0u);
}

TEST_F(ReporterTest, SamplesGoOutAsRowsWithTheirPredictionsPerVersion) {
  ReporterOptions o;
  o.sample_rate = 1;
  o.max_rows_per_message = 2;
  o.max_pending_rows = 5;
  auto r = Make(o);
  ASSERT_TRUE(r->ShouldSample());
  const std::vector<float> rows = {0, 1, 2, 3, 4, 5};  // 3 rows of 2
  r->AddSample("fashion", "3", rows, 2, std::vector<int64_t>{7, 8, 9});
  r->AddSample("fashion", "4", std::vector<float>{6, 7}, 2, std::vector<int64_t>{1});
  r->AddSample("fashion", "4", rows, 2, std::vector<int64_t>{1, 2, 3});  // over max_pending_rows: dropped
  r->AddSample("fashion", "4", rows, 4, std::vector<int64_t>{1, 2});      // 6 values for 2 rows of 4: ignored
  r->Tick();
  auto samples = Sent(kIngestServingSamplesType);
  ASSERT_EQ(samples.size(), 3u);  // v3: 2 + 1 rows, v4: 1 row
  std::vector<int64_t> preds;
  std::vector<float> inputs;
  for (const auto& d : samples) {
    auto s = DecodeServingSamplesBody(d.body);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->deployment, "fashion-prod");
    EXPECT_EQ(s->row_size, 2);
    EXPECT_LE(s->rows(), 2u);
    if (s->version == "3") {
      preds.insert(preds.end(), s->predictions.begin(), s->predictions.end());
      inputs.insert(inputs.end(), s->inputs.begin(), s->inputs.end());
    }
  }
  EXPECT_EQ(preds, (std::vector<int64_t>{7, 8, 9}));
  EXPECT_EQ(inputs, rows);
  ReporterStats s = r->stats();
  EXPECT_EQ(s.samples_sent, 4u);
  EXPECT_EQ(s.samples_dropped, 3u);
  // Pending rows were handed over: room again.
  r->AddSample("fashion", "4", rows, 2, std::vector<int64_t>{1, 2, 3});
  EXPECT_EQ(r->stats().samples_dropped, 3u);
}

TEST_F(ReporterTest, SampleRateIsHonoured) {
  ReporterOptions o;
  o.sample_rate = 0.25;
  auto r = Make(o);
  int hits = 0;
  for (int i = 0; i < 20000; ++i) hits += r->ShouldSample() ? 1 : 0;
  EXPECT_NEAR(hits / 20000.0, 0.25, 0.02);
  o.sample_rate = 0;
  auto none = Make(o);
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(none->ShouldSample());
}

TEST_F(ReporterTest, RefusesBadOptions) {
  ReporterOptions o;
  o.deployment = "d";
  o.sample_rate = 1.5;
  auto r = MonitorReporter::Create(o, {}, std::make_unique<FakeSender>());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--sample-rate"), std::string::npos);
  o.sample_rate = 0.1;
  o.deployment = "";
  EXPECT_FALSE(MonitorReporter::Create(o, {}, std::make_unique<FakeSender>()).ok());
}

// With no monitor listening, the ZeroMQ sender refuses at once (ZMQ_IMMEDIATE)
// instead of queueing or blocking.
TEST(ZmqFrameSender, RefusesWithoutAMonitorAndDeliversToOne) {
  zmq::context_t ctx(1);
  auto sender = MakeZmqFrameSender(ctx, "tcp://127.0.0.1:1");  // nothing listens on port 1
  EXPECT_FALSE(sender->TrySend("x"));

  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  auto live = MakeZmqFrameSender(ctx, endpoint);
  // The connection completes asynchronously: retry until it has (bounded).
  bool sent = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!sent && std::chrono::steady_clock::now() < deadline) {
    sent = live->TrySend("frame");
    if (!sent) std::this_thread::yield();
  }
  ASSERT_TRUE(sent);
  zmq::message_t id, body;
  router.set(zmq::sockopt::rcvtimeo, 5000);
  ASSERT_TRUE(router.recv(id));
  ASSERT_TRUE(router.recv(body));
  EXPECT_EQ(body.to_string(), "frame");
}

TEST(ServingWire, DecoderRefusesMalformedBodies) {
  ServingMetricsMessage m;
  m.deployment = "d";
  m.model = "m";
  m.version = "1";
  m.time = 1;
  m.requests = 2;
  m.succeeded = 1;
  m.latency_seconds = {{0.1, 1}, {1, 1, 0}, 2, 0.3};
  auto j = ParseMsgpack(EncodeServingMetricsMessage(m));
  ASSERT_TRUE(j.ok());
  json body = (*j)["body"];
  ASSERT_TRUE(DecodeServingMetricsBody(body).ok()) << DecodeServingMetricsBody(body).status().ToString();
  auto bad = [&](const std::function<void(json&)>& change, const std::string& names) {
    json b = body;
    change(b);
    auto r = DecodeServingMetricsBody(b);
    ASSERT_FALSE(r.ok()) << b.dump();
    EXPECT_NE(r.status().message().find(names), std::string::npos) << r.status().message();
  };
  bad([](json& b) { b.erase("deployment"); }, "deployment");
  bad([](json& b) { b["succeeded"] = 5; }, "succeeded");
  bad([](json& b) { b["requests"] = -1; }, "requests");
  bad([](json& b) { b["latency_seconds"]["counts"] = {1}; }, "latency_seconds");
  bad([](json& b) { b["latency_seconds"]["bounds"] = {1, 0.1}; }, "ascending");
  bad([](json& b) { b["latency_seconds"]["count"] = 7; }, "count");
  bad([](json& b) { b["errors_by_code"] = {{"abc", 1}}; }, "HTTP status");
  bad([](json& b) { b["feedback"]["accuracy"] = 1.5; }, "accuracy");
  bad([](json& b) { b["time"] = "now"; }, "time");

  ServingSamplesMessage s{"d", "m", "1", 1, 2, {1, 2, 3, 4}, {0, 1}};
  auto sj = ParseMsgpack(EncodeServingSamplesMessage(s));
  ASSERT_TRUE(sj.ok());
  json sb = (*sj)["body"];
  auto back = DecodeServingSamplesBody(sb);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->inputs, s.inputs);
  sb["row_size"] = 3;  // 2 rows of 3 need 24 bytes, 16 came
  EXPECT_FALSE(DecodeServingSamplesBody(sb).ok());
  sb["row_size"] = 0;
  EXPECT_FALSE(DecodeServingSamplesBody(sb).ok());
}

}  // namespace
}  // namespace gantry::serving
