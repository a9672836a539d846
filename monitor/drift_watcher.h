// DriftWatcher: continuous drift detection on a dataset directory
// (gantry-monitor --drift-watch DIR --drift-reference REF; docs/monitor.md,
// "Continuous drift").
//
// Protocol, on the watcher's own thread, every `interval`:
//  1. Until it has one, get the reference profile: REF as a dataset path
//     (anything drift/dataset_input.h reads) is read and profiled, its
//     threshold calibrated on windows of `window_rows`; REF as MODEL@VERSION
//     is the profile stored with that checkpoint version, fetched from the
//     storage service named in the data directory's run file (retried each
//     interval while storage is not up).
//  2. List the directory's shards (data/shard_dataset.h: CSV files or IDX
//     pairs; names starting with '.' or '_' or ending in .tmp/.part are not
//     yet complete). Each shard not already in the result store is read and
//     compared with the reference.
//  3. Each result is stored (SQLite, `drift.db` in the data directory, so
//     a restart neither loses nor recomputes them) and handed to `on_result`
//     (the monitor: SSE event, alert engine). A shard that cannot be read is
//     retried on every scan and logged once.
//
// Ownership: owns its thread and store. Thread safety: Recent() from any
// thread; the callback runs on the watcher thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/data_dir.h"
#include "common/sqlite.h"
#include "common/status.h"
#include "drift/detector.h"

namespace gantry::monitor {

struct DriftWatchOptions {
  std::string dir;        // watched dataset directory
  std::string reference;  // dataset path or MODEL@REF
  double interval_seconds = 10;
  int64_t window_rows = 1000;  // calibration windows of a dataset reference
  int top_features = 10;       // features kept per stored result
};

// One stored check of one shard (the /api/drift item).
struct DriftRecord {
  int64_t id = 0;
  std::string dataset;  // the watched directory
  std::string file;     // the shard's name
  double time = 0;      // unix seconds of the check
  double share = 0;
  int64_t drifted = 0;
  int64_t tested = 0;
  bool dataset_drift = false;
  double share_threshold = 0;
  int64_t rows = 0;
  std::string features_json;  // the most drifted features (EncodeDrift's items), a JSON array
  // A window of served requests (serving_drift.h); empty for a dataset shard.
  std::string deployment;
  std::string model;
  std::string version;
};

class DriftWatcher {
 public:
  using OnResult = std::function<void(const DriftRecord&)>;
  static Result<std::unique_ptr<DriftWatcher>> Create(DriftWatchOptions options, DataDir dir, OnResult on_result);
  ~DriftWatcher();
  DriftWatcher(const DriftWatcher&) = delete;
  DriftWatcher& operator=(const DriftWatcher&) = delete;

  void Start();
  void Stop();
  // One pass of steps 1-3 (what the thread runs each interval).
  Status ScanOnce();
  // Newest first, at most `limit`.
  std::vector<DriftRecord> Recent(size_t limit = 100) const;

 private:
  DriftWatcher(DriftWatchOptions options, DataDir dir, OnResult on_result, sql::Db db);
  Status LoadReference();
  Status Store(DriftRecord& r);
  void Run();

  const DriftWatchOptions options_;
  const DataDir dir_;
  OnResult on_result_;
  sql::Db db_;                                     // watcher thread (and Create)
  std::optional<drift::DriftDetector> detector_;   // watcher thread
  std::set<std::string> failed_;                   // shards whose read failed (logged once)
  mutable std::mutex mu_;
  std::vector<DriftRecord> recent_;  // GUARDED_BY(mu_), newest first
  std::set<std::string> done_;       // GUARDED_BY(mu_): shard names checked
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace gantry::monitor
