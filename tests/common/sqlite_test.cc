#include "common/sqlite.h"

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace gantry::sql {
namespace {

TEST(Sqlite, MigratesOnceAndPersists) {
  gantry::testing::TempDir dir;
  const std::string path = dir.File("gantry-sqlite.db");
  std::vector<std::string> migrations = {"CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);"};
  {
    auto db = Db::Open(path);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE(db->Migrate(migrations).ok());
    auto q = db->Prepare("INSERT INTO t VALUES (?, ?)");
    ASSERT_TRUE(q.ok());
    q->Bind(1, "a").Bind(2, int64_t{7});
    ASSERT_TRUE(q->Run().ok());
  }
  auto db = Db::Open(path);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->Migrate(migrations).ok());  // no-op: already at version 1
  auto q = db->Prepare("SELECT v FROM t WHERE k = ?");
  q->Bind(1, "a");
  ASSERT_TRUE(q->Step().value());
  EXPECT_EQ(q->ColumnInt(0), 7);
  // A binary that knows fewer migrations refuses a newer database.
  EXPECT_EQ(db->Migrate({}).code(), StatusCode::kFailedPrecondition);
}

TEST(Sqlite, TransactionRollsBackUnlessCommitted) {
  gantry::testing::TempDir dir;
  auto db = Db::Open(dir.File("gantry-tx.db"));
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->Exec("CREATE TABLE t (v INTEGER)").ok());
  {
    Transaction tx(*db);
    ASSERT_TRUE(tx.begin_status().ok());
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (1)").ok());
  }
  {
    Transaction tx(*db);
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (2)").ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  auto q = db->Prepare("SELECT group_concat(v) FROM t");
  ASSERT_TRUE(q->Step().value());
  EXPECT_EQ(q->ColumnText(0), "2");
}

TEST(Sqlite, ErrorsBecomeStatus) {
  gantry::testing::TempDir dir;
  auto db = Db::Open(dir.File("gantry-err.db"));
  ASSERT_TRUE(db.ok());
  auto bad = db->Prepare("SELEC nonsense");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("sqlite:"), std::string::npos);
  ASSERT_TRUE(db->Exec("CREATE TABLE u (k TEXT PRIMARY KEY)").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO u VALUES ('a')").ok());
  EXPECT_EQ(db->Exec("INSERT INTO u VALUES ('a')").code(), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace gantry::sql
