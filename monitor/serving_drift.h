// ServingDrift: drift windows of served requests (docs/monitor.md,
// "Drift of served requests").
//
// gantry-serve sends a sample of the rows it answered (`serving_samples`,
// in the feature space of the served version's drift profile) with the
// predicted class of each row. Here:
//  1. OnMessage (ingest thread) queues the rows, at most max_queued_rows
//     (more is dropped and counted: ingest never waits for a comparison);
//  2. the worker thread (or ProcessQueued() in tests) appends them to the
//     window of (deployment, model, version); a new version starts new
//     windows;
//  3. a window of window_rows rows is compared with the version's stored
//     profile (tensor trainer/drift_profile, fetched once per version through
//     `fetch`; a version without one is skipped, logged once; a failed fetch
//     is retried after profile_retry_seconds, windows filled meanwhile are
//     dropped) by the dataset watcher's detector and calibrated threshold
//     (drift/detector.h: KS per feature, Benjamini–Hochberg, share of
//     drifted features vs the profile's calibrated threshold);
//  4. the predicted classes of the window are compared with the classes the
//     version predicted on its evaluation set (tensor
//     trainer/eval_predictions, fetched with the profile) or, for versions
//     saved without it, with the profile's label counts (chi-square
//     homogeneity, drift/statistics.h), reported with the features as
//     "predicted_class" (not part of the share);
//  5. the result is stored (table serving_drift_results of drift.db, so a
//     restarted monitor still lists it) and handed to `on_result` (SSE, the
//     alert engine's drift rule, subject "serving:<deployment>/<model>").
//
// Ownership: owns its thread and database connection. Thread safety:
// OnMessage, Recent and stats from any thread; ProcessQueued from one at a
// time (the worker's after Start).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "common/data_dir.h"
#include "common/ingest_wire.h"
#include "common/sqlite.h"
#include "drift/detector.h"
#include "monitor/drift_watcher.h"
#include "monitor/monitor_service.h"

namespace gantry::monitor {

struct ServingDriftOptions {
  // Rows per window. The profile's threshold is calibrated on windows of its
  // own size (1,000 rows by default); windows much smaller than that alarm
  // more often than the measured false-alarm rate.
  int64_t window_rows = 1000;
  size_t max_queued_rows = 100000;
  int top_features = 10;
  double profile_retry_seconds = 30;
};

struct ServingDriftStats {
  uint64_t rows_received = 0;
  uint64_t rows_dropped = 0;     // queue full
  uint64_t windows_checked = 0;
  uint64_t windows_skipped = 0;  // no profile, or its width differs
};

// The drift profile stored with model@version (not_found: the version has none).
using ProfileFetch = std::function<Result<drift::ReferenceProfile>(const std::string& model, const std::string& version)>;
// load_checkpoint {model, ref: vN} from the storage service named in `dir`'s run file.
ProfileFetch StorageProfileFetch(DataDir dir);

// "serving:<deployment>/<model>": the dataset label of a served model's windows.
std::string ServingDriftSource(const std::string& deployment, const std::string& model);

class ServingDrift final : public IngestObserver {
 public:
  using OnResult = std::function<void(const DriftRecord&)>;
  // `db_path`: the SQLite file (drift.db); `clock` must outlive it.
  static Result<std::unique_ptr<ServingDrift>> Create(ServingDriftOptions options, const std::string& db_path,
                                                      ProfileFetch fetch, const Clock& clock, OnResult on_result);
  ~ServingDrift() override;
  ServingDrift(const ServingDrift&) = delete;
  ServingDrift& operator=(const ServingDrift&) = delete;

  void OnMessage(const IngestMessage& msg) override;
  void Start();
  void Stop();
  // Steps 2-5 for everything queued now.
  Status ProcessQueued();
  // Newest first, at most `limit`.
  std::vector<DriftRecord> Recent(size_t limit = 100) const;
  ServingDriftStats stats() const;
  const ServingDriftOptions& options() const { return options_; }

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // deployment, model, version
  struct Window {
    int64_t row_size = 0;
    std::vector<float> inputs;
    std::vector<int64_t> predictions;
    int64_t next_index = 1;  // number of the next full window of this key
  };
  struct Profile {
    std::optional<drift::DriftDetector> detector;
    std::string error;     // why there is none
    bool permanent = false;  // not_found: never retried
    double retry_at = 0;
  };

  ServingDrift(ServingDriftOptions options, sql::Db db, ProfileFetch fetch, const Clock& clock, OnResult on_result);
  // The profile of model@version, fetched or cached; null when none now.
  const drift::DriftDetector* DetectorFor(const std::string& model, const std::string& version);
  Status CheckWindow(const Key& key, Window& w);
  Status Store(DriftRecord& r);
  void Run();

  const ServingDriftOptions options_;
  sql::Db db_;  // worker thread (and Create)
  ProfileFetch fetch_;
  const Clock& clock_;
  OnResult on_result_;
  std::map<Key, Window> windows_;                                   // worker thread
  std::map<std::pair<std::string, std::string>, Profile> profiles_;  // worker thread
  std::set<std::string> logged_;                                    // worker thread: errors logged once

  mutable std::mutex mu_;
  std::deque<ServingSamplesMessage> queue_;  // GUARDED_BY(mu_)
  size_t queued_rows_ = 0;                   // GUARDED_BY(mu_)
  std::vector<DriftRecord> recent_;          // GUARDED_BY(mu_), newest first
  ServingDriftStats stats_;                  // GUARDED_BY(mu_)
  bool stop_ = false;                        // GUARDED_BY(mu_)
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace gantry::monitor
