#include "monitor/metrics_store.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

namespace gantry::monitor {
namespace {

// Schemas 1-3: one row per value. Kept so that a data dir of any age reaches
// schema 3 the way it always did; ConvertToPoints() then makes schema 4.
const std::vector<std::string> kRowSchemaMigrations = {
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

// 4: one row per point (metrics_store.h). The rows of `metrics` are moved
// over by ConvertToPoints() in the same transaction.
constexpr const char* kPointSchema = R"sql(
CREATE TABLE jobs(id INTEGER PRIMARY KEY, job_id TEXT NOT NULL UNIQUE);
CREATE TABLE metric_sets(id INTEGER PRIMARY KEY, names BLOB NOT NULL UNIQUE);
CREATE TABLE points(
  job INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  rank INTEGER NOT NULL,
  step INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  time REAL NOT NULL,
  total_steps INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  metric_set INTEGER NOT NULL,
  vals BLOB NOT NULL
);
CREATE UNIQUE INDEX points_key ON points(job, step, attempt, rank, metric_set);
CREATE TABLE senders(
  job INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  rank INTEGER NOT NULL,
  max_step INTEGER NOT NULL,
  max_seq INTEGER NOT NULL,
  seqs INTEGER NOT NULL,
  PRIMARY KEY(job, attempt, rank)
) WITHOUT ROWID;
)sql";

void AppendName(std::string& out, const std::string& name) {
  // Names are at most kMaxMetricNameLength (256) bytes: two bytes of length.
  const auto n = static_cast<uint16_t>(std::min<size_t>(name.size(), 0xffff));
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>(n >> 8));
  out.append(name.data(), n);
}

void AppendValue(std::string& out, double v) {
  if (std::isnan(v)) v = std::numeric_limits<double>::quiet_NaN();  // one NaN, as SQLite's NULL was
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

double ValueAt(const unsigned char* p) {
  uint64_t bits = 0;
  for (int i = 7; i >= 0; --i) bits = (bits << 8) | p[i];
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

Result<std::vector<std::string>> UnpackNames(std::string_view blob) {
  std::vector<std::string> names;
  size_t i = 0;
  while (i < blob.size()) {
    if (i + 2 > blob.size()) return Status::Corruption("monitor.db: a metric_sets entry is truncated");
    const size_t n = static_cast<unsigned char>(blob[i]) | (static_cast<size_t>(static_cast<unsigned char>(blob[i + 1])) << 8);
    i += 2;
    if (i + n > blob.size()) return Status::Corruption("monitor.db: a metric_sets entry is truncated");
    names.emplace_back(blob.substr(i, n));
    i += n;
  }
  return names;
}

// A raw statement for what sql::Statement does not offer (a blob column
// read in place). Owns the handle.
class BlobQuery {
 public:
  BlobQuery(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~BlobQuery() { sqlite3_finalize(stmt_); }
  BlobQuery(const BlobQuery&) = delete;
  BlobQuery& operator=(const BlobQuery&) = delete;
  Status status() const { return rc_ == SQLITE_OK ? Status::Ok() : GANTRY_SQLITE_STATUS(db_, rc_); }
  sqlite3_stmt* get() { return stmt_; }
  Result<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return GANTRY_SQLITE_STATUS(db_, rc);
  }
  std::string_view Blob(int i) {
    const void* p = sqlite3_column_blob(stmt_, i);
    return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string_view();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

Status CopyRowsToPoints(sql::Db& db);

// Schema 3 -> 4 (REQUIRES: a transaction is open, `metrics` exists).
Status ConvertToPoints(sql::Db& db) {
  GANTRY_RETURN_IF_ERROR(db.Exec(kPointSchema));
  GANTRY_RETURN_IF_ERROR(db.Exec("INSERT INTO jobs(job_id) SELECT DISTINCT job_id FROM metrics ORDER BY job_id"));
  GANTRY_RETURN_IF_ERROR(CopyRowsToPoints(db));
  // After the statements above are finalized: an open one locks `metrics`.
  GANTRY_RETURN_IF_ERROR(db.Exec(R"sql(
INSERT INTO senders(job, attempt, rank, max_step, max_seq, seqs)
  SELECT job, attempt, rank, MAX(step), MAX(seq), COUNT(DISTINCT NULLIF(seq, 0)) FROM points
  GROUP BY job, attempt, rank;
DROP TABLE metrics;
)sql"));
  return Status::Ok();
}

// One `points` row per stored point of `metrics`.
Status CopyRowsToPoints(sql::Db& db) {
  // The rows of one point are adjacent in (job_id, step, rowid) order, and a
  // point ends where (attempt, rank, step, epoch, time) changes: the same
  // grouping schema 3's reads used (and seq, so Seqs() answers the same).
  GANTRY_ASSIGN_OR_RETURN(auto rows, db.Prepare(
      "SELECT j.id, m.attempt, m.rank, m.step, m.epoch, m.time, m.name, m.value, m.total_steps, m.seq"
      " FROM metrics m JOIN jobs j ON j.job_id = m.job_id ORDER BY j.id, m.step, m.rowid"));
  GANTRY_ASSIGN_OR_RETURN(auto find_set, db.Prepare("SELECT id FROM metric_sets WHERE names = ?1"));
  GANTRY_ASSIGN_OR_RETURN(auto insert_set, db.Prepare("INSERT INTO metric_sets(names) VALUES(?1)"));
  GANTRY_ASSIGN_OR_RETURN(auto insert_point, db.Prepare(
      "INSERT OR IGNORE INTO points(job, attempt, rank, step, epoch, time, total_steps, seq, metric_set, vals)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  struct Pending {
    int64_t job = 0, attempt = 0, rank = 0, step = 0, epoch = 0, total_steps = 0, seq = 0;
    double time = 0;
    std::string names, vals;
    bool open = false;
  } cur;
  std::map<std::string, int64_t> sets;
  auto flush = [&]() -> Status {
    if (!cur.open) return Status::Ok();
    int64_t set_id = 0;
    if (auto it = sets.find(cur.names); it != sets.end()) {
      set_id = it->second;
    } else {
      insert_set.BindBlob(1, cur.names);
      Status st = insert_set.Run();
      GANTRY_RETURN_IF_ERROR(insert_set.Reset());
      GANTRY_RETURN_IF_ERROR(st);
      set_id = db.LastInsertRowId();
      sets.emplace(cur.names, set_id);
    }
    auto& s = insert_point;
    s.Bind(1, cur.job).Bind(2, cur.attempt).Bind(3, cur.rank).Bind(4, cur.step).Bind(5, cur.epoch);
    s.Bind(6, cur.time).Bind(7, cur.total_steps).Bind(8, cur.seq).Bind(9, set_id).BindBlob(10, cur.vals);
    Status st = s.Run();
    GANTRY_RETURN_IF_ERROR(s.Reset());
    cur.open = false;
    return st;
  };
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, rows.Step());
    if (!row) break;
    const int64_t job = rows.ColumnInt(0), attempt = rows.ColumnInt(1), rank = rows.ColumnInt(2);
    const int64_t step = rows.ColumnInt(3), epoch = rows.ColumnInt(4);
    const double time = rows.ColumnDouble(5);
    // Rows of different seqs stay apart (each seq is a stored point);
    // Points() merges them again for readers.
    const int64_t seq = rows.ColumnInt(9);
    const bool same = cur.open && cur.job == job && cur.attempt == attempt && cur.rank == rank && cur.step == step &&
                      cur.epoch == epoch && cur.time == time && cur.seq == seq;
    if (!same) {
      GANTRY_RETURN_IF_ERROR(flush());
      cur.job = job, cur.attempt = attempt, cur.rank = rank, cur.step = step, cur.epoch = epoch, cur.time = time;
      cur.total_steps = rows.ColumnInt(8);
      cur.seq = seq;
      cur.names.clear();
      cur.vals.clear();
      cur.open = true;
    }
    AppendName(cur.names, rows.ColumnText(6));
    AppendValue(cur.vals, rows.ColumnIsNull(7) ? std::numeric_limits<double>::quiet_NaN() : rows.ColumnDouble(7));
  }
  return flush();
}

// PRAGMA user_version; its statement is finalized before returning (an
// unfinished one would lock the tables a migration drops).
Result<int64_t> UserVersion(sql::Db& db) {
  GANTRY_ASSIGN_OR_RETURN(auto v, db.Prepare("PRAGMA user_version"));
  GANTRY_ASSIGN_OR_RETURN(bool row, v.Step());
  return row ? v.ColumnInt(0) : 0;
}

Status MigrateToPoints(sql::Db& db, const std::string& path) {
  GANTRY_RETURN_IF_ERROR(db.Migrate(kRowSchemaMigrations).WithContext(path));
  GANTRY_ASSIGN_OR_RETURN(int64_t version, UserVersion(db));
  if (version == MetricsStore::kSchemaVersion) return Status::Ok();
  sql::Transaction tx(db);
  GANTRY_RETURN_IF_ERROR(tx.begin_status());
  GANTRY_RETURN_IF_ERROR(ConvertToPoints(db).WithContext(path + ": migrating metrics to schema 4"));
  GANTRY_RETURN_IF_ERROR(db.Exec("PRAGMA user_version=" + std::to_string(MetricsStore::kSchemaVersion)));
  return tx.Commit();
}

}  // namespace

Result<MetricsStore> MetricsStore::Open(const std::string& path) {
  GANTRY_ASSIGN_OR_RETURN(sql::Db db, sql::Db::Open(path));
  // Migrate() refuses a version above its list's length: schema 4 is
  // checked here first.
  GANTRY_ASSIGN_OR_RETURN(int64_t version, UserVersion(db));
  if (version > kSchemaVersion) {
    return Status::FailedPrecondition(path + ": database schema version " + std::to_string(version) +
                                      " is newer than this binary knows (" + std::to_string(kSchemaVersion) +
                                      "); upgrade Gantry");
  }
  if (version < kSchemaVersion) GANTRY_RETURN_IF_ERROR(MigrateToPoints(db, path));
  MetricsStore store(std::move(db));
  GANTRY_RETURN_IF_ERROR(store.Prepare());
  return store;
}

Status MetricsStore::Prepare() {
  GANTRY_ASSIGN_OR_RETURN(insert_point_, db_.Prepare(
      "INSERT OR IGNORE INTO points(job, attempt, rank, step, epoch, time, total_steps, seq, metric_set, vals)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  GANTRY_ASSIGN_OR_RETURN(insert_event_, db_.Prepare(
      "INSERT INTO job_events(job_id, state, attempt, reason, time) VALUES(?1, ?2, ?3, ?4, ?5)"));
  GANTRY_ASSIGN_OR_RETURN(find_job_, db_.Prepare("SELECT id FROM jobs WHERE job_id = ?1"));
  GANTRY_ASSIGN_OR_RETURN(insert_job_, db_.Prepare("INSERT INTO jobs(job_id) VALUES(?1)"));
  GANTRY_ASSIGN_OR_RETURN(find_set_, db_.Prepare("SELECT id FROM metric_sets WHERE names = ?1"));
  GANTRY_ASSIGN_OR_RETURN(insert_set_, db_.Prepare("INSERT INTO metric_sets(names) VALUES(?1)"));
  GANTRY_ASSIGN_OR_RETURN(set_names_, db_.Prepare("SELECT names FROM metric_sets WHERE id = ?1"));
  GANTRY_ASSIGN_OR_RETURN(find_sender_, db_.Prepare(
      "SELECT max_step, max_seq, seqs FROM senders WHERE job = ?1 AND attempt = ?2 AND rank = ?3"));
  GANTRY_ASSIGN_OR_RETURN(upsert_sender_, db_.Prepare(
      "INSERT INTO senders(job, attempt, rank, max_step, max_seq, seqs) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
      " ON CONFLICT(job, attempt, rank) DO UPDATE SET max_step = excluded.max_step,"
      " max_seq = excluded.max_seq, seqs = excluded.seqs"));
  GANTRY_ASSIGN_OR_RETURN(step_sets_, db_.Prepare(
      "SELECT metric_set, seq FROM points WHERE job = ?1 AND step = ?2 AND attempt = ?3 AND rank = ?4"));
  return Status::Ok();
}

void MetricsStore::ForgetCaches() {
  job_keys_.clear();
  set_ids_.clear();
  set_names_cache_.clear();
  senders_.clear();
}

Result<int64_t> MetricsStore::JobKey(const std::string& job_id, bool create) {
  if (auto it = job_keys_.find(job_id); it != job_keys_.end()) return it->second;
  find_job_.Bind(1, job_id);
  auto row = find_job_.Step();
  int64_t key = row.ok() && *row ? find_job_.ColumnInt(0) : 0;
  GANTRY_RETURN_IF_ERROR(find_job_.Reset());
  if (!row.ok()) return row.status();
  if (key == 0) {
    if (!create) return int64_t{0};
    insert_job_.Bind(1, job_id);
    Status st = insert_job_.Run();
    GANTRY_RETURN_IF_ERROR(insert_job_.Reset());
    GANTRY_RETURN_IF_ERROR(st);
    key = db_.LastInsertRowId();
  }
  job_keys_.emplace(job_id, key);
  return key;
}

Result<int64_t> MetricsStore::MetricSetId(const std::string& packed) {
  if (auto it = set_ids_.find(packed); it != set_ids_.end()) return it->second;
  find_set_.BindBlob(1, packed);
  auto row = find_set_.Step();
  int64_t id = row.ok() && *row ? find_set_.ColumnInt(0) : 0;
  GANTRY_RETURN_IF_ERROR(find_set_.Reset());
  if (!row.ok()) return row.status();
  if (id == 0) {
    insert_set_.BindBlob(1, packed);
    Status st = insert_set_.Run();
    GANTRY_RETURN_IF_ERROR(insert_set_.Reset());
    GANTRY_RETURN_IF_ERROR(st);
    id = db_.LastInsertRowId();
  }
  set_ids_.emplace(packed, id);
  return id;
}

Result<const std::vector<std::string>*> MetricsStore::MetricSetNames(int64_t id) {
  if (auto it = set_names_cache_.find(id); it != set_names_cache_.end()) return &it->second;
  set_names_.Bind(1, id);
  auto row = set_names_.Step();
  std::string blob = row.ok() && *row ? set_names_.ColumnText(0) : std::string();
  const bool found = row.ok() && *row;
  GANTRY_RETURN_IF_ERROR(set_names_.Reset());
  if (!row.ok()) return row.status();
  if (!found) return Status::Corruption("monitor.db: a point names metric set " + std::to_string(id) + ", which is missing");
  GANTRY_ASSIGN_OR_RETURN(auto names, UnpackNames(blob));
  return &set_names_cache_.emplace(id, std::move(names)).first->second;
}

Result<MetricsStore::Sender*> MetricsStore::GetSender(const SenderId& id) {
  if (auto it = senders_.find(id); it != senders_.end()) return &it->second;
  auto& q = find_sender_;
  q.Bind(1, std::get<0>(id)).Bind(2, std::get<1>(id)).Bind(3, std::get<2>(id));
  auto row = q.Step();
  Sender s;
  if (row.ok() && *row) {
    s.max_step = q.ColumnInt(0);
    s.max_seq = q.ColumnInt(1);
    s.seqs = q.ColumnInt(2);
  }
  GANTRY_RETURN_IF_ERROR(q.Reset());
  if (!row.ok()) return row.status();
  return &senders_.emplace(id, s).first->second;
}

Status MetricsStore::WritePoint(const MetricsPoint& p) {
  GANTRY_ASSIGN_OR_RETURN(int64_t job, JobKey(p.job_id, /*create=*/true));
  GANTRY_ASSIGN_OR_RETURN(Sender * sender, GetSender({job, p.attempt, p.rank}));
  // A value of (job, attempt, rank, step, name) already stored is skipped.
  // Only a step at or below the sender's newest can have stored values.
  std::vector<bool> skip;
  size_t kept = p.values.size();
  bool repeat_seq = false;
  if (p.step <= sender->max_step) {
    auto& q = step_sets_;
    q.Bind(1, job).Bind(2, p.step).Bind(3, p.attempt).Bind(4, p.rank);
    std::vector<std::pair<int64_t, int64_t>> stored;  // (metric_set, seq)
    Status st;
    while (true) {
      auto row = q.Step();
      if (!row.ok()) {
        st = row.status();
        break;
      }
      if (!*row) break;
      stored.emplace_back(q.ColumnInt(0), q.ColumnInt(1));
    }
    GANTRY_RETURN_IF_ERROR(q.Reset());
    GANTRY_RETURN_IF_ERROR(st);
    skip.assign(p.values.size(), false);
    for (const auto& [set, seq] : stored) {
      if (p.seq > 0 && seq == p.seq) repeat_seq = true;
      GANTRY_ASSIGN_OR_RETURN(const std::vector<std::string>* names, MetricSetNames(set));
      for (size_t i = 0; i < p.values.size(); ++i) {
        if (!skip[i] && std::find(names->begin(), names->end(), p.values[i].first) != names->end()) {
          skip[i] = true;
          --kept;
        }
      }
    }
  }
  if (p.seq > 0 && !repeat_seq) {
    sender->max_seq = std::max(sender->max_seq, p.seq);
    ++sender->seqs;
    sender->dirty = true;
  }
  if (p.step > sender->max_step) {
    sender->max_step = p.step;
    sender->dirty = true;
  }
  if (kept == 0) return Status::Ok();
  packed_names_.clear();
  packed_values_.clear();
  for (size_t i = 0; i < p.values.size(); ++i) {
    if (!skip.empty() && skip[i]) continue;
    AppendName(packed_names_, p.values[i].first);
    AppendValue(packed_values_, p.values[i].second);
  }
  GANTRY_ASSIGN_OR_RETURN(int64_t set, MetricSetId(packed_names_));
  auto& s = insert_point_;
  s.Bind(1, job).Bind(2, p.attempt).Bind(3, p.rank).Bind(4, p.step).Bind(5, p.epoch);
  s.Bind(6, p.time).Bind(7, p.total_steps).Bind(8, p.seq).Bind(9, set).BindBlob(10, packed_values_);
  Status st = s.Run();
  GANTRY_RETURN_IF_ERROR(s.Reset());
  return st;
}

Status MetricsStore::Write(const std::vector<MetricsPoint>& points, const std::vector<JobEvent>& events) {
  if (points.empty() && events.empty()) return Status::Ok();
  Status st = [&]() -> Status {
    sql::Transaction tx(db_);
    GANTRY_RETURN_IF_ERROR(tx.begin_status());
    for (const auto& p : points) GANTRY_RETURN_IF_ERROR(WritePoint(p));
    for (auto& [id, s] : senders_) {
      if (!s.dirty) continue;
      auto& u = upsert_sender_;
      u.Bind(1, std::get<0>(id)).Bind(2, std::get<1>(id)).Bind(3, std::get<2>(id));
      u.Bind(4, s.max_step).Bind(5, s.max_seq).Bind(6, s.seqs);
      Status r = u.Run();
      GANTRY_RETURN_IF_ERROR(u.Reset());
      GANTRY_RETURN_IF_ERROR(r);
    }
    for (const auto& e : events) {
      auto& s = insert_event_;
      s.Bind(1, e.job_id).Bind(2, e.state).Bind(5, e.time);
      if (e.attempt) s.Bind(3, *e.attempt); else s.BindNull(3);
      if (e.reason) s.Bind(4, *e.reason); else s.BindNull(4);
      Status r = s.Run();
      GANTRY_RETURN_IF_ERROR(s.Reset());
      GANTRY_RETURN_IF_ERROR(r);
    }
    return tx.Commit();
  }();
  if (!st.ok()) {
    ForgetCaches();  // keys and counters of the rolled-back transaction
    return st;
  }
  for (auto& [id, s] : senders_) s.dirty = false;
  // Bound the per-sender cache; a forgotten sender is one lookup away.
  if (senders_.size() > 65536) senders_.clear();
  if (set_ids_.size() > 65536) set_ids_.clear();
  return Status::Ok();
}

Result<std::vector<MetricsPoint>> MetricsStore::Points(const std::string& job_id, int64_t after_step,
                                                      int64_t limit) {
  std::vector<MetricsPoint> points;
  GANTRY_ASSIGN_OR_RETURN(int64_t job, JobKey(job_id, /*create=*/false));
  if (job == 0) return points;
  // Stored points of one source and step with the same epoch and time are
  // one point to a reader (schema 3 stored them as adjacent rows).
  BlobQuery q(db_.raw(),
              "SELECT attempt, rank, step, epoch, time, total_steps, metric_set, vals FROM points"
              " WHERE job = ?1 AND step > ?2 ORDER BY step, rowid");
  GANTRY_RETURN_IF_ERROR(q.status());
  sqlite3_bind_int64(q.get(), 1, job);
  sqlite3_bind_int64(q.get(), 2, after_step);
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    sqlite3_stmt* s = q.get();
    const int64_t attempt = sqlite3_column_int64(s, 0), rank = sqlite3_column_int64(s, 1);
    const int64_t step = sqlite3_column_int64(s, 2), epoch = sqlite3_column_int64(s, 3);
    const double time = sqlite3_column_double(s, 4);
    bool same = false;
    if (!points.empty()) {
      const MetricsPoint& last = points.back();
      same = last.attempt == attempt && last.rank == rank && last.step == step && last.epoch == epoch &&
             last.time == time;
    }
    if (!same) {
      if (static_cast<int64_t>(points.size()) >= limit) break;
      MetricsPoint& p = points.emplace_back();
      p.job_id = job_id;
      p.attempt = attempt;
      p.rank = rank;
      p.step = step;
      p.epoch = epoch;
      p.time = time;
      p.total_steps = sqlite3_column_int64(s, 5);
    }
    GANTRY_ASSIGN_OR_RETURN(const std::vector<std::string>* names, MetricSetNames(sqlite3_column_int64(s, 6)));
    const std::string_view vals = q.Blob(7);
    if (vals.size() != names->size() * 8) {
      return Status::Corruption("monitor.db: a point of job '" + job_id + "' at step " + std::to_string(step) +
                                " has " + std::to_string(vals.size()) + " value bytes for " +
                                std::to_string(names->size()) + " names");
    }
    auto& values = points.back().values;
    values.reserve(values.size() + names->size());
    const auto* bytes = reinterpret_cast<const unsigned char*>(vals.data());
    for (size_t i = 0; i < names->size(); ++i) values.emplace_back((*names)[i], ValueAt(bytes + 8 * i));
  }
  return points;
}

Result<StoredSeqs> MetricsStore::Seqs(const std::string& job_id, int64_t attempt, int64_t rank) {
  StoredSeqs out;
  GANTRY_ASSIGN_OR_RETURN(int64_t job, JobKey(job_id, /*create=*/false));
  if (job == 0) return out;
  // Read, not cached: another connection (the writer) changes it.
  auto& q = find_sender_;
  q.Bind(1, job).Bind(2, attempt).Bind(3, rank);
  auto row = q.Step();
  const bool found = row.ok() && *row;
  const int64_t max_seq = found ? q.ColumnInt(1) : 0, count = found ? q.ColumnInt(2) : 0;
  GANTRY_RETURN_IF_ERROR(q.Reset());
  if (!row.ok()) return row.status();
  if (!found || max_seq == 0) return out;
  if (count == max_seq) {  // 1..max_seq, each once
    out.floor = max_seq;
    return out;
  }
  // Gaps: the seqs themselves (a scan of the job's points).
  GANTRY_ASSIGN_OR_RETURN(auto s, db_.Prepare(
      "SELECT DISTINCT seq FROM points WHERE job = ?1 AND attempt = ?2 AND rank = ?3 AND seq > 0 ORDER BY seq"));
  s.Bind(1, job).Bind(2, attempt).Bind(3, rank);
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool r, s.Step());
    if (!r) break;
    const int64_t seq = s.ColumnInt(0);
    if (seq == out.floor + 1 && out.above.empty()) {
      out.floor = seq;
    } else {
      out.above.push_back(seq);
    }
  }
  return out;
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
  // A job is in `jobs` once a point of it was written (in that transaction).
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT EXISTS(SELECT 1 FROM jobs WHERE job_id = ?1)"
      " OR EXISTS(SELECT 1 FROM job_events WHERE job_id = ?1)"));
  q.Bind(1, job_id);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::Internal("monitor.db: EXISTS query returned no row");
  return q.ColumnInt(0) != 0;
}

Result<std::vector<std::string>> MetricsStore::JobIds() {
  return db_.QueryStrings("SELECT job_id FROM job_events UNION SELECT job_id FROM jobs");
}

Result<std::vector<MetricsPoint>> MetricsStore::LatestPoints(const std::string& job_id) {
  GANTRY_ASSIGN_OR_RETURN(int64_t job, JobKey(job_id, /*create=*/false));
  if (job == 0) return std::vector<MetricsPoint>{};
  // Each rank's newest step, from `senders` (one row per attempt and rank).
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT MIN(s) FROM (SELECT MAX(max_step) AS s FROM senders WHERE job = ?1 GROUP BY rank)"));
  q.Bind(1, job);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row || q.ColumnIsNull(0)) return std::vector<MetricsPoint>{};
  return Points(job_id, q.ColumnInt(0) - 1, std::numeric_limits<int64_t>::max());
}

}  // namespace gantry::monitor
