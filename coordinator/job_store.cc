#include "coordinator/job_store.h"

#include "coordinator/retrain/schedule_store.h"

namespace gantry::coordinator {
namespace {

const std::vector<std::string> kMigrations = {
    R"sql(
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  spec TEXT NOT NULL,
  state TEXT NOT NULL,
  priority INTEGER NOT NULL,
  submitted_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  started_at REAL NOT NULL DEFAULT 0,
  finished_at REAL NOT NULL DEFAULT 0,
  attempt INTEGER NOT NULL DEFAULT 0,
  restarts INTEGER NOT NULL DEFAULT 0,
  not_before REAL NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX jobs_state ON jobs(state);
CREATE TABLE attempts (
  job_id TEXT NOT NULL REFERENCES jobs(id),
  number INTEGER NOT NULL,
  started_at REAL NOT NULL,
  ended_at REAL NOT NULL DEFAULT 0,
  pid INTEGER NOT NULL DEFAULT 0,
  log_dir TEXT NOT NULL DEFAULT '',
  outcome TEXT NOT NULL DEFAULT '',
  failure_class TEXT NOT NULL DEFAULT '',
  exit_code INTEGER NOT NULL DEFAULT -1,
  signal INTEGER NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_id, number)
);
)sql",
    // 2: the attempt's process group, so a restarted coordinator re-adopts it.
    "ALTER TABLE attempts ADD COLUMN pgid INTEGER NOT NULL DEFAULT 0;",
    // 3: the client's request id of submit_job, so a retried submit finds
    // its job instead of queueing a second one (NULL: none given).
    R"sql(
ALTER TABLE jobs ADD COLUMN request_id TEXT;
CREATE UNIQUE INDEX jobs_request_id ON jobs(request_id);
)sql",
    // 4: deployments (coordinator/deployment_store.cc reads and writes them).
    R"sql(
CREATE TABLE deployments (
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  port INTEGER NOT NULL DEFAULT 0,
  pid INTEGER NOT NULL DEFAULT 0,
  pgid INTEGER NOT NULL DEFAULT 0,
  serve_pid INTEGER NOT NULL DEFAULT 0,
  version TEXT NOT NULL DEFAULT '',
  restarts INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  started_at REAL NOT NULL DEFAULT 0,
  ready_at REAL NOT NULL DEFAULT 0,
  last_exit TEXT NOT NULL DEFAULT '',
  dir TEXT NOT NULL DEFAULT ''
);
)sql",
};

constexpr const char* kJobColumns =
    "seq, id, spec, state, priority, submitted_at, updated_at, started_at, finished_at, attempt, "
    "restarts, not_before, cancel_requested, reason";

}  // namespace

// The job and deployment tables, then the retraining schedules' tables
// (coordinator/retrain/schedule_store.cc), in one user_version sequence.
const std::vector<std::string>& CoordinatorSchema() {
  static const std::vector<std::string> schema = [] {
    std::vector<std::string> all = kMigrations;
    for (std::string& m : ScheduleMigrations()) all.push_back(std::move(m));
    return all;
  }();
  return schema;
}

Result<JobStore> JobStore::Open(const std::string& path) {
  GANTRY_ASSIGN_OR_RETURN(sql::Db db, sql::Db::Open(path, /*durable=*/true));
  GANTRY_RETURN_IF_ERROR(db.Migrate(CoordinatorSchema()).WithContext("migrating " + path));
  return JobStore(std::move(db));
}

Status JobStore::Insert(Job& job, const std::string& request_id) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "INSERT INTO jobs (id, spec, state, priority, submitted_at, updated_at, reason, request_id) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''))"));
  q.Bind(1, job.id).Bind(2, job.spec.ToJson().dump()).Bind(3, JobStateName(job.state));
  q.Bind(4, job.priority).Bind(5, job.submitted_at).Bind(6, job.updated_at).Bind(7, job.reason);
  q.Bind(8, request_id);
  GANTRY_RETURN_IF_ERROR(q.Run());
  job.seq = db_.LastInsertRowId();
  return Status::Ok();
}

Result<std::optional<std::string>> JobStore::JobForRequest(const std::string& request_id) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT id FROM jobs WHERE request_id=?"));
  q.Bind(1, request_id);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(q.ColumnText(0));
}

Status JobStore::Update(const Job& job) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "UPDATE jobs SET state=?, priority=?, updated_at=?, started_at=?, finished_at=?, attempt=?, "
      "restarts=?, not_before=?, cancel_requested=?, reason=? WHERE id=?"));
  q.Bind(1, JobStateName(job.state)).Bind(2, job.priority).Bind(3, job.updated_at);
  q.Bind(4, job.started_at).Bind(5, job.finished_at).Bind(6, job.attempt).Bind(7, job.restarts);
  q.Bind(8, job.not_before).Bind(9, job.cancel_requested ? 1 : 0).Bind(10, job.reason).Bind(11, job.id);
  GANTRY_RETURN_IF_ERROR(q.Run());
  if (db_.Changes() != 1) return Status::NotFound("job " + job.id + " not in the store");
  return Status::Ok();
}

Result<Job> JobStore::Row(sql::Statement& q) {
  Job j;
  j.seq = q.ColumnInt(0);
  j.id = q.ColumnText(1);
  json spec = json::parse(q.ColumnText(2), nullptr, /*allow_exceptions=*/false);
  if (spec.is_discarded() || !spec.is_object()) {
    return Status::Corruption("job store: the stored spec of job " + j.id + " is not a JSON map");
  }
  auto parsed = JobSpec::Parse(spec);
  if (!parsed.ok()) {
    return Status::Corruption("job store: the stored spec of job " + j.id + " is invalid: " +
                              parsed.status().message());
  }
  j.spec = std::move(parsed).value();
  auto state = JobStateFromName(q.ColumnText(3));
  if (!state) return Status::Corruption("job " + j.id + " has unknown state " + q.ColumnText(3));
  j.state = *state;
  j.priority = static_cast<int>(q.ColumnInt(4));
  j.submitted_at = q.ColumnDouble(5);
  j.updated_at = q.ColumnDouble(6);
  j.started_at = q.ColumnDouble(7);
  j.finished_at = q.ColumnDouble(8);
  j.attempt = static_cast<int>(q.ColumnInt(9));
  j.restarts = static_cast<int>(q.ColumnInt(10));
  j.not_before = q.ColumnDouble(11);
  j.cancel_requested = q.ColumnInt(12) != 0;
  j.reason = q.ColumnText(13);
  return j;
}

Result<Job> JobStore::Get(const std::string& id) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id=?"));
  q.Bind(1, id);
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::NotFound("no job " + id + " (list jobs with `gantry jobs`)");
  return Row(q);
}

Result<std::vector<Job>> JobStore::List(bool active_only, int limit) {
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs";
  if (active_only) sql += " WHERE state NOT IN ('SUCCEEDED','FAILED','CANCELLED')";
  // The newest `limit` jobs, returned oldest first.
  sql = "SELECT * FROM (" + sql + " ORDER BY seq DESC LIMIT ?) ORDER BY seq ASC";
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(sql));
  q.Bind(1, limit);
  std::vector<Job> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    GANTRY_ASSIGN_OR_RETURN(Job j, Row(q));
    out.push_back(std::move(j));
  }
  return out;
}

Status JobStore::InsertAttempt(const Attempt& a) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "INSERT OR REPLACE INTO attempts (job_id, number, started_at, pid, log_dir, pgid) VALUES (?, ?, ?, ?, ?, ?)"));
  q.Bind(1, a.job_id).Bind(2, a.number).Bind(3, a.started_at).Bind(4, a.pid).Bind(5, a.log_dir).Bind(6, a.pgid);
  return q.Run();
}

Status JobStore::UpdateAttempt(const Attempt& a) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "UPDATE attempts SET ended_at=?, pid=?, outcome=?, failure_class=?, exit_code=?, signal=?, "
      "message=?, pgid=? WHERE job_id=? AND number=?"));
  q.Bind(1, a.ended_at).Bind(2, a.pid).Bind(3, a.outcome).Bind(4, a.failure_class);
  q.Bind(5, a.exit_code).Bind(6, a.signal).Bind(7, a.message).Bind(8, a.pgid).Bind(9, a.job_id).Bind(10, a.number);
  GANTRY_RETURN_IF_ERROR(q.Run());
  if (db_.Changes() != 1) {
    return Status::NotFound("attempt " + std::to_string(a.number) + " of job " + a.job_id + " not in the store");
  }
  return Status::Ok();
}

Result<std::vector<Attempt>> JobStore::Attempts(const std::string& job_id) {
  GANTRY_ASSIGN_OR_RETURN(auto q, db_.Prepare(
      "SELECT job_id, number, started_at, ended_at, pid, log_dir, outcome, failure_class, "
      "exit_code, signal, message, pgid FROM attempts WHERE job_id=? ORDER BY number"));
  q.Bind(1, job_id);
  std::vector<Attempt> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    Attempt a;
    a.job_id = q.ColumnText(0);
    a.number = static_cast<int>(q.ColumnInt(1));
    a.started_at = q.ColumnDouble(2);
    a.ended_at = q.ColumnDouble(3);
    a.pid = static_cast<int>(q.ColumnInt(4));
    a.log_dir = q.ColumnText(5);
    a.outcome = q.ColumnText(6);
    a.failure_class = q.ColumnText(7);
    a.exit_code = static_cast<int>(q.ColumnInt(8));
    a.signal = static_cast<int>(q.ColumnInt(9));
    a.message = q.ColumnText(10);
    a.pgid = static_cast<int>(q.ColumnInt(11));
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace gantry::coordinator
