// What starts a retraining run, and how triggers that arrive together or
// during a run become one run (docs/retraining.md, "Triggers").
//
// NewDataTracker: a watched dataset directory's files, minus those an
// earlier run already used (`consumed`, persisted by the schedule store in the
// same transaction that records the run), are the new data. It fires when
// they reach `min_files` files or `min_samples` samples; the run that starts
// takes exactly those files, so one batch of new data triggers one run, also
// across a coordinator restart.
//
// RunCoalescer: at most one run per schedule at a time. Triggers that fire
// while a run is going (or several in one tick) are merged into the next run,
// which lists them all as its reasons.
//
// Both are plain state machines driven by their caller (no clock, no I/O),
// owned by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace gantry::coordinator {

enum class TriggerKind { kManual, kCron, kNewData, kDrift, kMetric };
const char* TriggerKindName(TriggerKind kind);

struct Trigger {
  TriggerKind kind = TriggerKind::kManual;
  std::string detail;  // "cron 0 3 * * * (Europe/Berlin)", "3 new files, 3000 samples", an alert's why
  std::chrono::system_clock::time_point at;
};

// One file of a watched directory; `samples` as counted by the caller (the
// dataset's header), 0 when unknown.
struct DataFile {
  std::string name;  // relative to the watched directory
  int64_t samples = 0;
};

struct NewDataConfig {
  int64_t min_files = 1;    // fire at this many new files...
  int64_t min_samples = 0;  // ...or this many new samples (0: files only)
};

class NewDataTracker {
 public:
  NewDataTracker(NewDataConfig config, std::set<std::string> consumed)
      : config_(config), consumed_(std::move(consumed)) {}

  // The files of `listing` no run has used yet, in name order.
  std::vector<DataFile> Pending(const std::vector<DataFile>& listing) const;
  // A trigger when the pending files reach a threshold.
  std::optional<Trigger> Check(const std::vector<DataFile>& listing,
                               std::chrono::system_clock::time_point now) const;
  // A run took these files: they never trigger again.
  void Consume(const std::vector<DataFile>& files);
  const std::set<std::string>& consumed() const { return consumed_; }

 private:
  NewDataConfig config_;
  std::set<std::string> consumed_;
};

class RunCoalescer {
 public:
  void Fire(Trigger trigger) { pending_.push_back(std::move(trigger)); }
  // When no run is going and something fired: every pending trigger, and the
  // coalescer now counts a run as going. Otherwise nullopt.
  std::optional<std::vector<Trigger>> Start();
  // The run ended (any outcome): the next Start() may go.
  void Finished() { running_ = false; }
  bool running() const { return running_; }
  size_t pending() const { return pending_.size(); }

 private:
  bool running_ = false;
  std::vector<Trigger> pending_;
};

}  // namespace gantry::coordinator
