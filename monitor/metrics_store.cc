#include "monitor/metrics_store.h"

#include <cmath>
#include <limits>

namespace gantry::monitor {
namespace {

const std::vector<std::string> kMigrations = {
    R"sql(
CREATE TABLE metrics(
  job_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  rank INTEGER NOT NULL,
  step INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  time REAL NOT NULL,
  name TEXT NOT NULL,
  value REAL
);
CREATE INDEX metrics_job_step ON metrics(job_id, step);
CREATE TABLE job_events(
  job_id TEXT NOT NULL,
  state TEXT NOT NULL,
  attempt INTEGER,
  reason TEXT,
  time REAL NOT NULL
);
CREATE INDEX job_events_job ON job_events(job_id);
)sql",
    // 2: the run's planned step count, so a replayed history can show
    // progress as step/total (0 = not reported).
    R"sql(
ALTER TABLE metrics ADD COLUMN total_steps INTEGER NOT NULL DEFAULT 0;
)sql",
    // 3: at-least-once delivery. A point may arrive more than once (a
    // worker re-sends what was not acknowledged); one row per (job_id,
    // attempt, rank, step, name) keeps the first. seq is the sender's
    // sequence number (0 = not sequenced), the basis of acknowledgements.
    R"sql(
ALTER TABLE metrics ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
DELETE FROM metrics WHERE rowid NOT IN
  (SELECT MIN(rowid) FROM metrics GROUP BY job_id, attempt, rank, step, name);
CREATE UNIQUE INDEX metrics_point ON metrics(job_id, attempt, rank, step, name);
)sql",
};

}  // namespace

Result<MetricsStore> MetricsStore::Open(const std::string& path) {
  GANTRY_ASSIGN_OR_RETURN(sql::Db db, sql::Db::Open(path));
  GANTRY_RETURN_IF_ERROR(db.Migrate(kMigrations).WithContext(path));
  MetricsStore store(std::move(db));
  GANTRY_ASSIGN_OR_RETURN(store.insert_metric_, store.db_.Prepare(
      "INSERT OR IGNORE INTO metrics(job_id, attempt, rank, step, epoch, time, name, value, total_steps, seq)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  GANTRY_ASSIGN_OR_RETURN(store.insert_event_, store.db_.Prepare(
      "INSERT INTO job_events(job_id, state, attempt, reason, time) VALUES(?1, ?2, ?3, ?4, ?5)"));
  return store;
}

Status MetricsStore::Write(const std::vector<MetricsPoint>& points, const std::vector<JobEvent>& events) {
  if (points.empty() && events.empty()) return Status::Ok();
  sql::Transaction tx(db_);
  GANTRY_RETURN_IF_ERROR(tx.begin_status());
  for (const auto& p : points) {
    for (const auto& [name, value] : p.values) {
      auto& s = insert_metric_;
      s.Bind(1, p.job_id).Bind(2, p.attempt).Bind(3, p.rank).Bind(4, p.step).Bind(5, p.epoch);
      s.Bind(6, p.time).Bind(7, name).Bind(9, p.total_steps).Bind(10, p.seq);
      if (std::isnan(value)) {
        s.BindNull(8);
      } else {
        s.Bind(8, value);
      }
      Status st = s.Run();
      GANTRY_RETURN_IF_ERROR(s.Reset());
      GANTRY_RETURN_IF_ERROR(st);
    }
  }
  for (const auto& e : events) {
    auto& s = insert_event_;
    s.Bind(1, e.job_id).Bind(2, e.state).Bind(5, e.time);
    if (e.attempt) s.Bind(3, *e.attempt); else s.BindNull(3);
    if (e.reason) s.Bind(4, *e.reason); else s.BindNull(4);
    Status st = s.Run();
    GANTRY_RETURN_IF_ERROR(s.Reset());
    GANTRY_RETURN_IF_ERROR(st);
  }
  return tx.Commit();
}

Result<std::vector<MetricsPoint>> MetricsStore::Points(const std::string& job_id, int64_t after_step,
                                                      int64_t limit) {
  // Rows of one point were inserted together, so ordering by (step, rowid)
  // keeps them adjacent; a point ends where (attempt, rank, step, epoch,
  // time) changes.
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT attempt, rank, step, epoch, time, name, value, total_steps FROM metrics"
      " WHERE job_id = ?1 AND step > ?2 ORDER BY step, rowid"));
  q.Bind(1, job_id).Bind(2, after_step);
  std::vector<MetricsPoint> points;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    const int64_t attempt = q.ColumnInt(0), rank = q.ColumnInt(1), step = q.ColumnInt(2);
    const int64_t epoch = q.ColumnInt(3);
    const double time = q.ColumnDouble(4);
    bool same = false;
    if (!points.empty()) {
      const MetricsPoint& last = points.back();
      same = last.attempt == attempt && last.rank == rank && last.step == step && last.epoch == epoch &&
             last.time == time;
    }
    if (!same) {
      if (static_cast<int64_t>(points.size()) >= limit) break;
      MetricsPoint p;
      p.job_id = job_id;
      p.attempt = attempt;
      p.rank = rank;
      p.step = step;
      p.epoch = epoch;
      p.time = time;
      p.total_steps = q.ColumnInt(7);
      points.push_back(std::move(p));
    }
    points.back().values.emplace_back(
        q.ColumnText(5), q.ColumnIsNull(6) ? std::numeric_limits<double>::quiet_NaN() : q.ColumnDouble(6));
  }
  return points;
}

Result<std::vector<int64_t>> MetricsStore::Seqs(const std::string& job_id, int64_t attempt, int64_t rank) {
  // The unique index (job_id, attempt, rank, step, name) narrows the scan to
  // the source's rows.
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT DISTINCT seq FROM metrics WHERE job_id = ?1 AND attempt = ?2 AND rank = ?3 AND seq > 0"
      " ORDER BY seq"));
  q.Bind(1, job_id).Bind(2, attempt).Bind(3, rank);
  std::vector<int64_t> seqs;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    seqs.push_back(q.ColumnInt(0));
  }
  return seqs;
}

Result<std::vector<JobEvent>> MetricsStore::Events(const std::string& job_id) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT state, attempt, reason, time FROM job_events WHERE job_id = ?1 ORDER BY rowid"));
  q.Bind(1, job_id);
  std::vector<JobEvent> events;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    JobEvent e;
    e.job_id = job_id;
    e.state = q.ColumnText(0);
    if (!q.ColumnIsNull(1)) e.attempt = q.ColumnInt(1);
    if (!q.ColumnIsNull(2)) e.reason = q.ColumnText(2);
    e.time = q.ColumnDouble(3);
    events.push_back(std::move(e));
  }
  return events;
}

Result<bool> MetricsStore::HasJob(const std::string& job_id) {
  // Both lookups use an index that starts with job_id.
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT EXISTS(SELECT 1 FROM metrics WHERE job_id = ?1)"
      " OR EXISTS(SELECT 1 FROM job_events WHERE job_id = ?1)"));
  q.Bind(1, job_id);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::Internal("monitor.db: EXISTS query returned no row");
  return q.ColumnInt(0) != 0;
}

Result<std::vector<std::string>> MetricsStore::JobIds() {
  return db_.QueryStrings("SELECT job_id FROM job_events UNION SELECT job_id FROM metrics");
}

Result<std::vector<MetricsPoint>> MetricsStore::LatestPoints(const std::string& job_id) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT MIN(s) FROM (SELECT MAX(step) AS s FROM metrics WHERE job_id = ?1 GROUP BY rank)"));
  q.Bind(1, job_id);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row || q.ColumnIsNull(0)) return std::vector<MetricsPoint>{};
  return Points(job_id, q.ColumnInt(0) - 1, std::numeric_limits<int64_t>::max());
}

}  // namespace gantry::monitor
