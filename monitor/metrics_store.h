// MetricsStore: the monitor's SQLite database, <data>/monitor.db (WAL).
//
// Schema 4 (PRAGMA user_version = 4): one row per point, values packed.
//   jobs(id INTEGER PRIMARY KEY, job_id TEXT UNIQUE)
//     the dictionary of job ids: points carry the integer key.
//   metric_sets(id INTEGER PRIMARY KEY, names BLOB UNIQUE)
//     the dictionary of a point's value names, in order (u16 length + bytes
//     each); a training loop sends the same set every window.
//   points(job, attempt, rank, step, epoch, time, total_steps, seq,
//          metric_set, vals)
//     one row per point; vals is 8 bytes (IEEE-754 double, little endian)
//     per name of metric_set, NaN and +-Inf as themselves. Unique index
//     points_key(job, step, attempt, rank, metric_set): the only index.
//   senders(job, attempt, rank, max_step, max_seq, seqs)
//     per source: its newest step and, for sequenced points, the highest
//     seq and how many seqs were written; seqs == max_seq means 1..max_seq
//     are all stored, so a restarted monitor loads a sender with one lookup.
//   job_events(job_id, state, attempt, reason, time)  index (job_id)
//
// Duplicates: a value of (job, attempt, rank, step, name) that is stored
// already is skipped, as schema 3's unique index on exactly those columns
// did: a re-sent point adds nothing, a second point of the same step adds
// only its new names. Cheap because steps grow: only a point whose step is
// not above its sender's max_step is checked against the rows of that step.
//
// Schemas 1-3 (one row per value, keyed by job_id TEXT) are migrated on
// Open(), in one transaction: their rows become points (rows of one source
// and step with the same epoch and time form one point, as Points() read
// them), and the old table is dropped.
//
// Ownership: owns the database handle, its cached statements and the
// dictionaries read so far. Thread safety: one thread at a time (the
// monitor's writer thread owns one MetricsStore, each reader its own).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/sqlite.h"
#include "monitor/ingest_message.h"

namespace gantry::monitor {

// What the store holds of one sender's sequence numbers: every seq in
// 1..floor, and `above` (ascending, each > floor + 1).
struct StoredSeqs {
  int64_t floor = 0;
  std::vector<int64_t> above;
};

class MetricsStore {
 public:
  // The schema this binary writes (PRAGMA user_version).
  static constexpr int64_t kSchemaVersion = 4;

  static Result<MetricsStore> Open(const std::string& path);

  MetricsStore(MetricsStore&&) = default;
  MetricsStore& operator=(MetricsStore&&) = default;

  // Inserts everything in one transaction: all or nothing. Values already
  // stored (same job_id, attempt, rank, step, name) are skipped. On failure
  // the dictionaries cached from this transaction are forgotten.
  Status Write(const std::vector<MetricsPoint>& points, const std::vector<JobEvent>& events);

  // Reads return the records ingest parsed (ingest_message.h), so a point or
  // an event has one struct from the wire to the reply.
  //
  // Points of `job_id` with step > after_step, ordered by step then arrival,
  // at most `limit` of them; each point's values in the order they were
  // written, NaN as NaN; total_steps 0 when the worker did not report it.
  // Stored points of one source and step with equal epoch and time come back
  // as one point (a step's training and evaluation values).
  Result<std::vector<MetricsPoint>> Points(const std::string& job_id, int64_t after_step, int64_t limit);
  // The sequence numbers (> 0) stored for one sender: what a restarted
  // monitor has durably received from it.
  Result<StoredSeqs> Seqs(const std::string& job_id, int64_t attempt, int64_t rank);
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
  struct Sender {
    int64_t max_step = -1;
    int64_t max_seq = 0;
    int64_t seqs = 0;
    bool dirty = false;  // changed in the open transaction
  };
  using SenderId = std::tuple<int64_t, int64_t, int64_t>;  // job key, attempt, rank

  explicit MetricsStore(sql::Db db) : db_(std::move(db)) {}
  Status Prepare();
  // The job's key, inserting it when `create`; 0 when absent.
  Result<int64_t> JobKey(const std::string& job_id, bool create);
  // The id of a packed name list, inserting it when new.
  Result<int64_t> MetricSetId(const std::string& packed);
  // The names of metric set `id` (cached).
  Result<const std::vector<std::string>*> MetricSetNames(int64_t id);
  Result<Sender*> GetSender(const SenderId& id);
  // Writes one point (REQUIRES: a transaction is open).
  Status WritePoint(const MetricsPoint& p);
  void ForgetCaches();

  sql::Db db_;  // declared first: the statements below die before it
  sql::Statement insert_point_;
  sql::Statement insert_event_;
  sql::Statement find_job_;
  sql::Statement insert_job_;
  sql::Statement find_set_;
  sql::Statement insert_set_;
  sql::Statement set_names_;
  sql::Statement find_sender_;
  sql::Statement upsert_sender_;
  sql::Statement step_sets_;
  std::unordered_map<std::string, int64_t> job_keys_;
  std::unordered_map<std::string, int64_t> set_ids_;            // packed names -> id
  std::unordered_map<int64_t, std::vector<std::string>> set_names_cache_;
  std::map<SenderId, Sender> senders_;
  // Reused per point so the hot path does not allocate.
  std::string packed_names_;
  std::string packed_values_;
};

}  // namespace gantry::monitor
