#include "serving/feedback_tracker.h"

#include <utility>

namespace gantry::serving {

FeedbackTracker::FeedbackTracker(FeedbackOptions options) : options_(std::move(options)) {
  if (options_.max_predictions == 0) options_.max_predictions = 1;
  if (options_.window == 0) options_.window = 1;
  clock_ = options_.clock != nullptr ? options_.clock : &system_clock_;
}

void FeedbackTracker::ForgetLocked(const std::string& id) const {
  predictions_.erase(id);
  if (expired_.insert(id).second) {
    expired_order_.push_back(id);
    while (expired_order_.size() > options_.max_predictions) {
      expired_.erase(expired_order_.front());
      expired_order_.pop_front();
    }
  }
}

void FeedbackTracker::ExpireLocked(std::chrono::steady_clock::time_point now) const {
  while (!order_.empty()) {
    const auto& [id, seq] = order_.front();
    auto it = predictions_.find(id);
    if (it == predictions_.end() || it->second.seq != seq) {
      order_.pop_front();  // replaced by a later prediction with the same id
      continue;
    }
    const bool too_many = predictions_.size() > options_.max_predictions;
    const bool too_old = now - it->second.time > options_.prediction_ttl;
    if (!too_many && !too_old) break;
    const std::string gone = id;
    order_.pop_front();
    ForgetLocked(gone);
  }
  while (window_.size() > options_.window) window_.pop_front();
  if (options_.window_age.count() > 0) {
    while (!window_.empty() && now - window_.front().time > options_.window_age)
      window_.pop_front();
  }
}

void FeedbackTracker::RecordPrediction(const std::string& request_id, int64_t predicted_class) {
  std::lock_guard<std::mutex> l(mu_);
  const auto now = clock_->Now();
  const uint64_t seq = ++seq_;
  predictions_[request_id] = Prediction{predicted_class, now, seq, false};
  order_.emplace_back(request_id, seq);
  expired_.erase(request_id);  // its id is live again; expired_order_ may keep a stale copy
  ++counters_.predictions_recorded;
  ExpireLocked(now);
}

Status FeedbackTracker::RecordFeedback(const std::string& request_id, int64_t true_label) {
  std::lock_guard<std::mutex> l(mu_);
  const auto now = clock_->Now();
  ExpireLocked(now);
  auto it = predictions_.find(request_id);
  if (it == predictions_.end()) {
    if (expired_.count(request_id)) {
      ++counters_.expired_ids;
      return Status::NotFound("feedback: request id \"" + request_id +
                              "\" expired (its prediction was dropped; send feedback sooner)");
    }
    ++counters_.unknown_ids;
    return Status::NotFound("feedback: unknown request id \"" + request_id + "\"");
  }
  if (it->second.labelled) {
    ++counters_.duplicate_labels;
    return Status::AlreadyExists("feedback: request id \"" + request_id + "\" already labelled");
  }
  it->second.labelled = true;
  ++counters_.labels_matched;
  window_.push_back(Outcome{it->second.predicted, true_label, now});
  ExpireLocked(now);
  return Status::Ok();
}

FeedbackSnapshot FeedbackTracker::Snapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  ExpireLocked(clock_->Now());
  FeedbackSnapshot s = counters_;
  for (const auto& [id, p] : predictions_) {
    if (!p.labelled) ++s.pending;
  }
  for (const Outcome& o : window_) {
    ++s.window_outcomes;
    ClassStats& pred = s.per_class[o.predicted];
    pred.label = o.predicted;
    ClassStats& truth = s.per_class[o.label];
    truth.label = o.label;
    ++truth.support;
    if (o.predicted == o.label) {
      ++s.window_correct;
      ++truth.true_positives;
    } else {
      ++pred.false_positives;
      ++truth.false_negatives;
    }
  }
  if (s.window_outcomes > 0)
    s.accuracy = static_cast<double>(s.window_correct) / static_cast<double>(s.window_outcomes);
  for (auto& [label, c] : s.per_class) {
    if (c.true_positives + c.false_positives > 0)
      c.precision = static_cast<double>(c.true_positives) /
                    static_cast<double>(c.true_positives + c.false_positives);
    if (c.true_positives + c.false_negatives > 0)
      c.recall = static_cast<double>(c.true_positives) /
                 static_cast<double>(c.true_positives + c.false_negatives);
  }
  return s;
}

}  // namespace gantry::serving
