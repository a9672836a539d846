// Live accuracy from feedback: remembers recent predictions (request id →
// predicted class), matches later true labels to them, and keeps a sliding
// window of labelled outcomes for accuracy and per-class precision/recall.
//
// Memory is bounded:
//   - at most max_predictions predictions wait for a label; the oldest is
//     dropped past that, or once older than prediction_ttl (it "expires");
//   - the ids of the last max_predictions dropped predictions are kept so
//     that late feedback is reported as expired rather than unknown;
//   - the window holds the last `window` labelled outcomes, and none older
//     than window_age (0 = no age limit).
// Feedback for an id never predicted (or long forgotten) is not_found
// ("unknown"); for a dropped one not_found ("expired"); a second label for the
// same id already_exists. All are counted in the snapshot.
//
// Thread safety: all methods lock one internal mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.h"
#include "common/status.h"

namespace gantry::serving {

struct FeedbackOptions {
  size_t max_predictions = 100000;
  std::chrono::steady_clock::duration prediction_ttl = std::chrono::hours(1);
  size_t window = 1000;
  std::chrono::steady_clock::duration window_age{0};
  const Clock* clock = nullptr;  // not owned; nullptr = the system clock
};

struct ClassStats {
  int64_t label = 0;
  uint64_t true_positives = 0;
  uint64_t false_positives = 0;
  uint64_t false_negatives = 0;
  uint64_t support = 0;              // outcomes whose true label is this class
  std::optional<double> precision;   // nullopt when never predicted in the window
  std::optional<double> recall;      // nullopt when never the true label
};

struct FeedbackSnapshot {
  uint64_t window_outcomes = 0;  // labelled outcomes in the window
  uint64_t window_correct = 0;
  std::optional<double> accuracy;  // nullopt with an empty window
  std::map<int64_t, ClassStats> per_class;  // classes seen in the window
  uint64_t predictions_recorded = 0;  // ever
  uint64_t pending = 0;               // predictions waiting for a label now
  uint64_t labels_matched = 0;        // ever
  uint64_t unknown_ids = 0;
  uint64_t expired_ids = 0;
  uint64_t duplicate_labels = 0;
};

class FeedbackTracker {
 public:
  explicit FeedbackTracker(FeedbackOptions options = {});

  // Remembers the prediction for `request_id`; a repeated id replaces it.
  void RecordPrediction(const std::string& request_id, int64_t predicted_class);
  // Matches a true label; not_found (unknown or expired id) or already_exists
  // (labelled before) otherwise. The message names the id.
  Status RecordFeedback(const std::string& request_id, int64_t true_label);
  FeedbackSnapshot Snapshot() const;

 private:
  struct Prediction {
    int64_t predicted = 0;
    std::chrono::steady_clock::time_point time;
    uint64_t seq = 0;
    bool labelled = false;
  };
  struct Outcome {
    int64_t predicted = 0;
    int64_t label = 0;
    std::chrono::steady_clock::time_point time;
  };

  // REQUIRES: mu_ held. Drops predictions past the bounds and old outcomes.
  void ExpireLocked(std::chrono::steady_clock::time_point now) const;
  void ForgetLocked(const std::string& id) const;

  FeedbackOptions options_;
  SystemClock system_clock_;
  const Clock* clock_;

  mutable std::mutex mu_;
  // Expiry happens lazily, in const Snapshot() too, hence mutable.
  mutable std::unordered_map<std::string, Prediction> predictions_;  // GUARDED_BY(mu_)
  mutable std::deque<std::pair<std::string, uint64_t>> order_;       // GUARDED_BY(mu_)
  mutable std::unordered_set<std::string> expired_;                  // GUARDED_BY(mu_)
  mutable std::deque<std::string> expired_order_;                    // GUARDED_BY(mu_)
  mutable std::deque<Outcome> window_;                               // GUARDED_BY(mu_)
  uint64_t seq_ = 0;                                                 // GUARDED_BY(mu_)
  FeedbackSnapshot counters_;  // GUARDED_BY(mu_); the "ever" counters only
};

}  // namespace gantry::serving
