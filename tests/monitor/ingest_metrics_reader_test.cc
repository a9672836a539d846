// The metrics fast path (ingest_metrics_reader.h): what it reads equals what
// the generic json path reads, and whatever it declines still gets the
// generic path's answer.
#include "monitor/ingest_metrics_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/ingest_wire.h"
#include "tests/monitor/test_support.h"

namespace gantry::monitor {
namespace {

using testing::Frame;
using testing::MetricsBody;

TEST(IngestMetricsReader, ReadsTheWorkersFrameAsTheGenericPathDoes) {
  MetricsMessage m;
  m.job_id = "job-fast";
  m.attempt = 2;
  m.rank = 3;
  m.step = 1234567;
  m.total_steps = 5000000;
  m.epoch = 7;
  m.time = 1.8e9 + 0.25;
  m.values = {{"step_time", 1e-3}, {"loss", std::numeric_limits<double>::quiet_NaN()},
              {"accuracy", -std::numeric_limits<double>::infinity()}, {"samples_per_sec", 51234}};
  m.seq = 99;
  const std::string frame = EncodeMetricsMessage(m);

  MetricsPoint fast;
  std::string_view body;
  ASSERT_TRUE(ReadMetricsFrame(frame, fast, body));
  EXPECT_EQ(fast.job_id, "job-fast");
  EXPECT_EQ(fast.attempt, 2);
  EXPECT_EQ(fast.rank, 3);
  EXPECT_EQ(fast.step, 1234567);
  EXPECT_EQ(fast.total_steps, 5000000);
  EXPECT_EQ(fast.epoch, 7);
  EXPECT_EQ(fast.time, 1.8e9 + 0.25);
  EXPECT_EQ(fast.seq, 99);
  // Sorted by name, as a json map gives them.
  ASSERT_EQ(fast.values.size(), 4u);
  EXPECT_EQ(fast.values[0].first, "accuracy");
  EXPECT_EQ(fast.values[0].second, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(fast.values[1].first, "loss");
  EXPECT_TRUE(std::isnan(fast.values[1].second));
  EXPECT_EQ(fast.values[2].first, "samples_per_sec");
  EXPECT_EQ(fast.values[2].second, 51234);
  EXPECT_EQ(fast.values[3].first, "step_time");

  // The generic path over the same frame gives the same point and feed.
  auto j = ParseMsgpack(frame);
  ASSERT_TRUE(j.ok());
  auto msg = ParseIngestFrame(frame);
  ASSERT_TRUE(msg.ok()) << msg.status().ToString();
  EXPECT_EQ(msg->FeedPayload(), ToMsgpack({{"type", "metrics"}, {"body", (*j)["body"]}}));
  const auto& p = std::get<MetricsPoint>(msg->record);
  EXPECT_EQ(p.values.size(), fast.values.size());
  EXPECT_EQ(msg->Topic(), "job/job-fast");
}

TEST(IngestMetricsReader, DeclinesWhatItDoesNotKnowAndTheGenericPathAnswers) {
  // An unknown body key: declined, accepted by the generic path.
  json extra = MetricsBody("j", 1, {{"loss", 1.0}});
  extra["note"] = "hi";
  MetricsPoint p;
  std::string_view body;
  EXPECT_FALSE(ReadMetricsFrame(Frame("metrics", extra), p, body));
  auto ok = ParseIngestFrame(Frame("metrics", extra));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(std::get<MetricsPoint>(ok->record).step, 1);
  EXPECT_EQ(ParseMsgpack(ok->FeedPayload())->at("body").at("note"), "hi");

  // A nil optional field: declined, read as absent by the generic path.
  json nil_total = MetricsBody("j", 2, {{"loss", 1.0}});
  nil_total["total_steps"] = nullptr;
  EXPECT_FALSE(ReadMetricsFrame(Frame("metrics", nil_total), p, body));
  auto nil = ParseIngestFrame(Frame("metrics", nil_total));
  ASSERT_TRUE(nil.ok());
  EXPECT_EQ(std::get<MetricsPoint>(nil->record).total_steps, 0);

  // Bad frames: declined, and the generic path's error stands.
  struct Bad {
    const char* what;
    json body;
  };
  json float_step = MetricsBody("j", 1, {{"loss", 1.0}});
  float_step["step"] = 1.5;
  json negative_rank = MetricsBody("j", 1, {{"loss", 1.0}}, -1);
  json bad_value = MetricsBody("j", 1, {{"loss", "high"}});
  json no_values = MetricsBody("j", 1, json::object());
  json bad_job = MetricsBody("j/../x", 1, {{"loss", 1.0}});
  json inf_time = MetricsBody("j", 1, {{"loss", 1.0}});
  inf_time["time"] = std::numeric_limits<double>::infinity();
  for (const Bad& b : {Bad{"float step", float_step}, Bad{"negative rank", negative_rank},
                       Bad{"string value", bad_value}, Bad{"no values", no_values}, Bad{"bad job id", bad_job},
                       Bad{"infinite time", inf_time}}) {
    EXPECT_FALSE(ReadMetricsFrame(Frame("metrics", b.body), p, body)) << b.what;
    EXPECT_FALSE(ParseIngestFrame(Frame("metrics", b.body)).ok()) << b.what;
  }
  // Truncated bytes never read past the end.
  const std::string good = Frame("metrics", MetricsBody("j", 1, {{"loss", 1.0}}));
  ASSERT_TRUE(ReadMetricsFrame(good, p, body));
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(ReadMetricsFrame(std::string_view(good).substr(0, n), p, body)) << n;
  }
  EXPECT_FALSE(ReadMetricsFrame(good + "x", p, body)) << "trailing bytes";
}

}  // namespace
}  // namespace gantry::monitor
