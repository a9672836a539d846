// Live accuracy from feedback: the window's accuracy and per-class
// precision/recall, bounded memory, unknown/expired/duplicate ids.
#include "serving/feedback_tracker.h"

#include <gtest/gtest.h>

namespace gantry::serving {
namespace {
using namespace std::chrono_literals;

TEST(FeedbackTracker, AccuracyPrecisionRecallOverTheWindow) {
  ManualClock clock;
  FeedbackOptions o;
  o.clock = &clock;
  FeedbackTracker t(o);
  // (predicted, true): 0→0, 0→0, 0→1, 1→1, 1→0, 2→2
  const std::vector<std::pair<int, int>> cases = {{0, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 0}, {2, 2}};
  for (size_t i = 0; i < cases.size(); ++i)
    t.RecordPrediction("r" + std::to_string(i), cases[i].first);
  for (size_t i = 0; i < cases.size(); ++i)
    ASSERT_TRUE(t.RecordFeedback("r" + std::to_string(i), cases[i].second).ok());
  const FeedbackSnapshot s = t.Snapshot();
  EXPECT_EQ(s.window_outcomes, 6u);
  EXPECT_EQ(s.window_correct, 4u);
  ASSERT_TRUE(s.accuracy.has_value());
  EXPECT_DOUBLE_EQ(*s.accuracy, 4.0 / 6.0);
  ASSERT_EQ(s.per_class.size(), 3u);
  // Class 0: predicted three times, 2 right; truly 0 three times.
  const ClassStats& c0 = s.per_class.at(0);
  EXPECT_DOUBLE_EQ(*c0.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(*c0.recall, 2.0 / 3.0);
  EXPECT_EQ(c0.support, 3u);
  const ClassStats& c1 = s.per_class.at(1);  // predicted 1 twice, 1 right; truly 1 twice
  EXPECT_DOUBLE_EQ(*c1.precision, 0.5);
  EXPECT_DOUBLE_EQ(*c1.recall, 0.5);
  EXPECT_DOUBLE_EQ(*s.per_class.at(2).precision, 1.0);
  EXPECT_EQ(s.labels_matched, 6u);
  EXPECT_EQ(s.pending, 0u);
}

TEST(FeedbackTracker, WindowSlidesByCountAndAge) {
  ManualClock clock;
  FeedbackOptions o;
  o.clock = &clock;
  o.window = 3;
  o.window_age = 10s;
  FeedbackTracker t(o);
  for (int i = 0; i < 5; ++i) {
    t.RecordPrediction("r" + std::to_string(i), 1);
    ASSERT_TRUE(t.RecordFeedback("r" + std::to_string(i), i < 2 ? 0 : 1).ok());  // 2 wrong, 3 right
  }
  FeedbackSnapshot s = t.Snapshot();
  EXPECT_EQ(s.window_outcomes, 3u);  // the two wrong ones slid out
  EXPECT_DOUBLE_EQ(*s.accuracy, 1.0);
  EXPECT_FALSE(s.per_class.at(1).precision == std::nullopt);
  clock.Advance(11s);
  s = t.Snapshot();
  EXPECT_EQ(s.window_outcomes, 0u);
  EXPECT_FALSE(s.accuracy.has_value());
  EXPECT_EQ(s.labels_matched, 5u);  // the "ever" counters stay
}

TEST(FeedbackTracker, UnknownExpiredAndDuplicateIdsAreReported) {
  ManualClock clock;
  FeedbackOptions o;
  o.clock = &clock;
  o.max_predictions = 2;
  o.prediction_ttl = 60s;
  FeedbackTracker t(o);
  t.RecordPrediction("a", 1);
  t.RecordPrediction("b", 1);
  t.RecordPrediction("c", 1);  // "a" dropped: over max_predictions
  Status s = t.RecordFeedback("a", 1);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("\"a\" expired"), std::string::npos) << s.message();
  s = t.RecordFeedback("zzz", 1);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("unknown request id \"zzz\""), std::string::npos) << s.message();
  ASSERT_TRUE(t.RecordFeedback("b", 0).ok());
  EXPECT_EQ(t.RecordFeedback("b", 0).code(), StatusCode::kAlreadyExists);
  clock.Advance(61s);  // "c" expires by age
  EXPECT_EQ(t.Snapshot().pending, 0u);
  s = t.RecordFeedback("c", 1);
  EXPECT_NE(s.message().find("\"c\" expired"), std::string::npos) << s.message();
  const FeedbackSnapshot snap = t.Snapshot();
  EXPECT_EQ(snap.expired_ids, 2u);
  EXPECT_EQ(snap.unknown_ids, 1u);
  EXPECT_EQ(snap.duplicate_labels, 1u);
  EXPECT_EQ(snap.labels_matched, 1u);
  EXPECT_EQ(snap.predictions_recorded, 3u);
}

TEST(FeedbackTracker, MemoryStaysBounded) {
  FeedbackOptions o;
  o.max_predictions = 100;
  FeedbackTracker t(o);
  for (int i = 0; i < 10000; ++i) t.RecordPrediction("r" + std::to_string(i), i % 10);
  const FeedbackSnapshot s = t.Snapshot();
  EXPECT_EQ(s.pending, 100u);
  EXPECT_TRUE(t.RecordFeedback("r9999", 9).ok());
  EXPECT_EQ(t.RecordFeedback("r9800", 0).code(), StatusCode::kNotFound);  // expired
  EXPECT_EQ(t.RecordFeedback("r1", 0).code(), StatusCode::kNotFound);     // forgotten: unknown
  EXPECT_EQ(t.Snapshot().unknown_ids, 1u);
}

}  // namespace
}  // namespace gantry::serving
