// MetricsStore: the monitor's SQLite database, <data>/monitor.db (WAL).
//
//   metrics(job_id, attempt, rank, step, epoch, time, name, value,
//           total_steps, seq)
//     one row per value of a point; index (job_id, step); unique index
//     (job_id, attempt, rank, step, name): a point written again (a worker
//     re-sent it) keeps its first rows (INSERT OR IGNORE). value is REAL;
//     NaN is stored as NULL (SQLite has no NaN) and read back as NaN, while
//     +-Inf are ordinary REALs. seq is the sender's sequence number (0 =
//     not sequenced).
//   job_events(job_id, state, attempt, reason, time)  index (job_id)
//
// Ownership: owns the database handle and its cached statements.
// Thread safety: one thread at a time.
#pragma once

#include <string>
#include <vector>

#include "common/sqlite.h"
#include "monitor/ingest_message.h"

namespace gantry::monitor {

class MetricsStore {
 public:
  static Result<MetricsStore> Open(const std::string& path);

  MetricsStore(MetricsStore&&) = default;
  MetricsStore& operator=(MetricsStore&&) = default;

  // Inserts everything in one transaction: all or nothing. Rows already
  // stored (same job_id, attempt, rank, step, name) are skipped.
  Status Write(const std::vector<MetricsPoint>& points, const std::vector<JobEvent>& events);

  // Reads return the records ingest parsed (ingest_message.h), so a point or
  // an event has one struct from the wire to the reply.
  //
  // Points of `job_id` with step > after_step, ordered by step then arrival,
  // at most `limit` of them; each point's values in the order they were
  // written, NaN as NaN; total_steps 0 when the worker did not report it.
  Result<std::vector<MetricsPoint>> Points(const std::string& job_id, int64_t after_step, int64_t limit);
  // The distinct sequence numbers (> 0) stored for one sender, ascending:
  // what a restarted monitor has durably received from it.
  Result<std::vector<int64_t>> Seqs(const std::string& job_id, int64_t attempt, int64_t rank);
  // Events of `job_id` in arrival order.
  Result<std::vector<JobEvent>> Events(const std::string& job_id);
  // True when the store holds any point or event of `job_id`.
  Result<bool> HasJob(const std::string& job_id);
  // Every job with a point or an event.
  Result<std::vector<std::string>> JobIds();
  // Each rank's newest point of `job_id` (and whatever lies between the
  // oldest of those and the newest step): enough to rebuild a job's latest
  // values after a restart without reading its whole history.
  Result<std::vector<MetricsPoint>> LatestPoints(const std::string& job_id);

 private:
  explicit MetricsStore(sql::Db db) : db_(std::move(db)) {}

  sql::Db db_;  // declared first: the statements below die before it
  sql::Statement insert_metric_;
  sql::Statement insert_event_;
};

}  // namespace gantry::monitor
