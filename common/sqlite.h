// RAII wrappers for SQLite: a database handle opened in WAL mode and prepared
// statements with typed binding. Every statement is parameterised; callers
// never format SQL with values.
//
// Thread safety: a Db and its Statements belong to one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gantry::sql {

class Db;

// A prepared statement. Bind parameters by 1-based index, Step() through rows.
// Bind() chains; the first bind that fails (index out of range, value too
// big) is remembered and returned by the next Step()/Run(), which then do
// not execute the statement.
class Statement {
 public:
  Statement() = default;
  Statement(Statement&& o) noexcept : db_(o.db_), stmt_(o.stmt_), bind_error_(std::move(o.bind_error_)) {
    o.stmt_ = nullptr;
  }
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int i, int64_t v);
  Statement& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Statement& Bind(int i, double v);
  Statement& Bind(int i, std::string_view v);
  Statement& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Statement& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Statement& BindBlob(int i, std::string_view bytes);
  Statement& BindNull(int i);

  // Advances to the next row. Returns true if a row is available, false when
  // done; errors come back as a Status.
  Result<bool> Step();
  // Runs to completion, ignoring rows.
  Status Run();
  Status Reset();

  int64_t ColumnInt(int i) const;
  double ColumnDouble(int i) const;
  std::string ColumnText(int i) const;
  bool ColumnIsNull(int i) const;

 private:
  friend class Db;
  Statement(sqlite3* db, sqlite3_stmt* s) : db_(db), stmt_(s) {}
  // Records the first failed bind.
  void CheckBind(int rc, int i, const char* file, int line);
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  Status bind_error_;
};

class Db {
 public:
  // Opens (creating if needed) `path`, sets WAL mode, synchronous=NORMAL
  // (FULL when `durable`), foreign keys on and a busy timeout.
  static Result<Db> Open(const std::string& path, bool durable = false);

  Db(Db&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Db& operator=(Db&& o) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  Result<Statement> Prepare(std::string_view sql);
  // Runs one or more statements without parameters (schema, pragmas).
  Status Exec(std::string_view sql);
  // The first column of every row of a parameterless query, as text.
  Result<std::vector<std::string>> QueryStrings(std::string_view sql);
  int64_t LastInsertRowId() const;
  int Changes() const;
  sqlite3* raw() { return db_; }

  // Schema migrations: runs migrations[i] for every i >= user_version, each
  // in its own transaction, and bumps PRAGMA user_version.
  Status Migrate(const std::vector<std::string>& migrations);

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back in the destructor unless committed.
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  const Status& begin_status() const { return begin_; }
  Status Commit();

 private:
  Db& db_;
  Status begin_;
  bool done_ = false;
};

// Converts a sqlite3 result code into a Status with file:line.
Status SqliteStatus(sqlite3* db, int rc, const char* file, int line);
#define GANTRY_SQLITE_STATUS(db, rc) ::gantry::sql::SqliteStatus((db), (rc), __FILE__, __LINE__)

}  // namespace gantry::sql
