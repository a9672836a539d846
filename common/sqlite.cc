#include "common/sqlite.h"

namespace gantry::sql {

Status SqliteStatus(sqlite3* db, int rc, const char* file, int line) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  std::string msg = std::string("sqlite: ") + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  StatusCode code = StatusCode::kInternal;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = StatusCode::kUnavailable; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: code = StatusCode::kCorruption; break;
    case SQLITE_CONSTRAINT: code = StatusCode::kAlreadyExists; break;
    case SQLITE_FULL: code = StatusCode::kResourceExhausted; break;
    default: break;
  }
  return AnnotateStatus(Status(code, msg), file, line);
}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    if (stmt_) sqlite3_finalize(stmt_);
    db_ = o.db_;
    stmt_ = o.stmt_;
    bind_error_ = std::move(o.bind_error_);
    o.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

void Statement::CheckBind(int rc, int i, const char* file, int line) {
  if (rc == SQLITE_OK || !bind_error_.ok()) return;
  bind_error_ = SqliteStatus(db_, rc, file, line).WithContext("binding parameter " + std::to_string(i));
}

Statement& Statement::Bind(int i, int64_t v) {
  CheckBind(sqlite3_bind_int64(stmt_, i, v), i, __FILE__, __LINE__);
  return *this;
}
Statement& Statement::Bind(int i, double v) {
  CheckBind(sqlite3_bind_double(stmt_, i, v), i, __FILE__, __LINE__);
  return *this;
}
Statement& Statement::Bind(int i, std::string_view v) {
  CheckBind(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT), i, __FILE__,
            __LINE__);
  return *this;
}
Statement& Statement::BindBlob(int i, std::string_view v) {
  CheckBind(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT), i, __FILE__,
            __LINE__);
  return *this;
}
Statement& Statement::BindNull(int i) {
  CheckBind(sqlite3_bind_null(stmt_, i), i, __FILE__, __LINE__);
  return *this;
}

Result<bool> Statement::Step() {
  if (!bind_error_.ok()) return bind_error_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return GANTRY_SQLITE_STATUS(db_, rc);
}

Status Statement::Run() {
  while (true) {
    auto r = Step();
    if (!r.ok()) return r.status();
    if (!*r) return Status::Ok();
  }
}

Status Statement::Reset() {
  sqlite3_clear_bindings(stmt_);
  bind_error_ = Status::Ok();
  return GANTRY_SQLITE_STATUS(db_, sqlite3_reset(stmt_));
}

int64_t Statement::ColumnInt(int i) const { return sqlite3_column_int64(stmt_, i); }
double Statement::ColumnDouble(int i) const { return sqlite3_column_double(stmt_, i); }
std::string Statement::ColumnText(int i) const {
  const auto* p = sqlite3_column_blob(stmt_, i);
  int n = sqlite3_column_bytes(stmt_, i);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}
bool Statement::ColumnIsNull(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

Result<Db> Db::Open(const std::string& path, bool durable) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = GANTRY_SQLITE_STATUS(raw, rc).WithContext("opening " + path);
    sqlite3_close(raw);
    return s;
  }
  Db db(raw);
  sqlite3_busy_timeout(raw, 5000);
  std::string pragmas = "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=";
  pragmas += durable ? "FULL;" : "NORMAL;";
  GANTRY_RETURN_IF_ERROR(db.Exec(pragmas).WithContext("opening " + path));
  return db;
}

Db& Db::operator=(Db&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close_v2(db_);
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

Result<Statement> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  if (rc != SQLITE_OK) return GANTRY_SQLITE_STATUS(db_, rc);
  return Statement(db_, s);
}

Status Db::Exec(std::string_view sql) {
  std::string owned(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, owned.c_str(), nullptr, nullptr, &err);
  if (err) sqlite3_free(err);
  return GANTRY_SQLITE_STATUS(db_, rc);
}

Result<std::vector<std::string>> Db::QueryStrings(std::string_view sql) {
  GANTRY_ASSIGN_OR_RETURN(auto q, Prepare(sql));
  std::vector<std::string> out;
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(q.ColumnText(0));
  }
  return out;
}

int64_t Db::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
int Db::Changes() const { return sqlite3_changes(db_); }

Status Db::Migrate(const std::vector<std::string>& migrations) {
  GANTRY_ASSIGN_OR_RETURN(auto q, Prepare("PRAGMA user_version"));
  GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
  int64_t version = row ? q.ColumnInt(0) : 0;
  if (version > static_cast<int64_t>(migrations.size())) {
    return Status::FailedPrecondition("database schema version " + std::to_string(version) +
                                      " is newer than this binary knows (" +
                                      std::to_string(migrations.size()) + "); upgrade Gantry");
  }
  for (size_t i = static_cast<size_t>(version); i < migrations.size(); ++i) {
    Transaction tx(*this);
    GANTRY_RETURN_IF_ERROR(tx.begin_status());
    GANTRY_RETURN_IF_ERROR(Exec(migrations[i]));
    GANTRY_RETURN_IF_ERROR(Exec("PRAGMA user_version=" + std::to_string(i + 1)));
    GANTRY_RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

Transaction::Transaction(Db& db) : db_(db), begin_(db.Exec("BEGIN IMMEDIATE")) {}

Transaction::~Transaction() {
  if (!done_ && begin_.ok()) (void)db_.Exec("ROLLBACK");
}

Status Transaction::Commit() {
  // A failed COMMIT (e.g. SQLITE_BUSY) leaves the transaction open: let the
  // destructor roll it back rather than poison the connection.
  Status s = db_.Exec("COMMIT");
  done_ = s.ok();
  return s;
}

}  // namespace gantry::sql
