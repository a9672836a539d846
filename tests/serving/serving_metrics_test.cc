// Serving metrics: histograms, errors by status and kind, input quality
// against a profile, and the snapshot under concurrent writers.
#include "serving/serving_metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace gantry::serving {
namespace {

TEST(Histogram, CountsIntoBucketsAndQuantiles) {
  Histogram h({1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 3.0, 100.0}) h.Observe(v);
  const HistogramSnapshot s = h.Snapshot();
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{2, 1, 1, 1}));  // <=1, <=2, <=4, above
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum, 106.0);
  EXPECT_DOUBLE_EQ(s.Quantile(0.4), 1.0);
  EXPECT_DOUBLE_EQ(s.Quantile(0.6), 2.0);
  EXPECT_DOUBLE_EQ(s.Quantile(1.0), 4.0);
  EXPECT_EQ(Histogram::BatchSizeBounds(64),
            (std::vector<double>{1, 2, 4, 8, 16, 32, 64}));
  EXPECT_EQ(Histogram::BatchSizeBounds(48), (std::vector<double>{1, 2, 4, 8, 16, 32, 48}));
}

TEST(ServingMetrics, CountsRequestsErrorsAndInputQuality) {
  ServingMetricsOptions o;
  o.max_batch = 8;
  ServingMetrics m(o);
  m.RecordSuccess(0.001);
  m.RecordSuccess(0.002);
  m.RecordError(ApiError::BadRequest(ErrorKind::kNonFinite, "inputs[0].data[3]: NaN"), 1e-5);
  m.RecordError(ApiError::BadRequest(ErrorKind::kWrongShape, "inputs[0].shape"), 1e-5);
  m.RecordError(ApiError::BadRequest(ErrorKind::kWrongShape, "inputs[0].shape"), 1e-5);
  m.RecordError(ApiErrorFromStatus(Status::ResourceExhausted("full")), 1e-5);
  m.RecordBatch(8);
  m.RecordBatch(3);
  const ServingSnapshot s = m.Snapshot();
  EXPECT_EQ(s.requests, 6u);
  EXPECT_EQ(s.succeeded, 2u);
  EXPECT_EQ(s.errors_by_status.at(400), 3u);
  EXPECT_EQ(s.errors_by_status.at(503), 1u);
  EXPECT_EQ(s.errors_by_kind.at("wrong_shape"), 2u);
  EXPECT_EQ(s.errors_by_kind.at("overloaded"), 1u);
  EXPECT_EQ(s.input_quality.non_finite, 1u);
  EXPECT_EQ(s.input_quality.wrong_shape, 2u);
  EXPECT_EQ(s.latency_seconds.count, 6u);
  EXPECT_EQ(s.batch_size.count, 2u);
  EXPECT_EQ(s.batch_size.counts[2], 1u);  // 3 rows: the <=4 bucket
  EXPECT_EQ(s.batch_size.counts[3], 1u);  // 8 rows: the <=8 bucket
}

TEST(ServingMetrics, CountsValuesOutsideTheProfile) {
  ServingMetricsOptions o;
  o.profile = {{0, 0, -1}, {1, 1, 1}};
  auto m = ServingMetrics::Create(o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  (*m)->CheckRange({0.5f, 0.5f, 0.0f, 0.2f, 0.3f, 0.1f}, 3);   // in range
  (*m)->CheckRange({2.0f, 0.5f, 0.0f, -1.0f, 0.3f, 5.0f}, 3);  // features 0 (twice) and 2
  (*m)->CheckRange({2.0f, 0.5f}, 2);  // not the profile's row size: ignored
  const InputQualitySnapshot q = (*m)->Snapshot().input_quality;
  EXPECT_EQ(q.out_of_range_values, 3u);
  EXPECT_EQ(q.out_of_range_requests, 1u);
  EXPECT_EQ(q.out_of_range_by_feature, (std::map<size_t, uint64_t>{{0, 2}, {2, 1}}));
}

TEST(ServingMetrics, RefusesABadProfile) {
  ServingMetricsOptions o;
  o.profile = {{0, 0}, {1}};
  EXPECT_EQ(ServingMetrics::Create(o).status().code(), StatusCode::kInvalidArgument);
  o.profile = {{0, 2}, {1, 1}};
  auto bad = ServingMetrics::Create(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("feature 1 has min"), std::string::npos);
}

TEST(ServingMetrics, ConcurrentWritersLoseNothing) {
  ServingMetrics m(ServingMetricsOptions{});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        m.RecordSuccess(1e-4);
        m.RecordBatch(4);
        m.feedback().RecordPrediction(std::to_string(t) + "/" + std::to_string(i), i % 2);
        (void)m.feedback().RecordFeedback(std::to_string(t) + "/" + std::to_string(i), i % 2);
        if (i % 100 == 0) (void)m.Snapshot();
      }
    });
  }
  for (auto& th : threads) th.join();
  const ServingSnapshot s = m.Snapshot();
  EXPECT_EQ(s.requests, 4000u);
  EXPECT_EQ(s.batch_size.count, 4000u);
  EXPECT_EQ(s.feedback.labels_matched, 4000u);
  EXPECT_EQ(s.feedback.window_outcomes, 1000u);  // the default window
  EXPECT_DOUBLE_EQ(*s.feedback.accuracy, 1.0);  // whichever 1000 they are
}

}  // namespace
}  // namespace gantry::serving
