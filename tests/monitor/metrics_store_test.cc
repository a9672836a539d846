// MetricsStore schema 4 (one row per point): migration of a schema-3 data
// dir, duplicate values, stored seqs; IngestWriter on its own thread.
#include "monitor/metrics_store.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <cmath>
#include <limits>

#include "common/sqlite.h"
#include "monitor/ingest_writer.h"
#include "tests/monitor/test_support.h"

namespace gantry::monitor {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

MetricsPoint Point(const std::string& job, int64_t rank, int64_t step, double time,
                   std::vector<std::pair<std::string, double>> values, int64_t seq = 0) {
  MetricsPoint p;
  p.job_id = job;
  p.attempt = 1;
  p.rank = rank;
  p.step = step;
  p.epoch = step / 10;
  p.time = time;
  p.total_steps = 100;
  p.values = std::move(values);
  p.seq = seq;
  return p;
}

int64_t UserVersion(const std::string& path) {
  auto db = sql::Db::Open(path);
  if (!db.ok()) return -1;
  auto q = db->Prepare("PRAGMA user_version");
  if (!q.ok()) return -1;
  auto row = q->Step();
  return row.ok() && *row ? q->ColumnInt(0) : -1;
}

// A monitor.db as the schema-3 binary left it (one row per value, job_id as
// text, the unique index of migration 3).
void WriteSchemaThree(const std::string& path) {
  auto db = sql::Db::Open(path);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->Exec(R"sql(
CREATE TABLE metrics(job_id TEXT NOT NULL, attempt INTEGER NOT NULL, rank INTEGER NOT NULL,
  step INTEGER NOT NULL, epoch INTEGER NOT NULL, time REAL NOT NULL, name TEXT NOT NULL, value REAL,
  total_steps INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL DEFAULT 0);
CREATE INDEX metrics_job_step ON metrics(job_id, step);
CREATE UNIQUE INDEX metrics_point ON metrics(job_id, attempt, rank, step, name);
CREATE TABLE job_events(job_id TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER, reason TEXT,
  time REAL NOT NULL);
CREATE INDEX job_events_job ON job_events(job_id);
INSERT INTO metrics VALUES('a', 1, 0, 1, 0, 10.0, 'accuracy', 0.25, 50, 1);
INSERT INTO metrics VALUES('a', 1, 0, 1, 0, 10.0, 'loss', 2.5, 50, 1);
INSERT INTO metrics VALUES('a', 1, 1, 1, 0, 10.5, 'step_time', 0.125, 50, 1);
INSERT INTO metrics VALUES('a', 1, 0, 2, 0, 11.0, 'loss', NULL, 50, 2);
INSERT INTO metrics VALUES('a', 1, 0, 2, 0, 11.0, 'test_loss', 3.0, 50, 3);
INSERT INTO metrics VALUES('a', 1, 0, 3, 0, 12.0, 'loss', 1e999, 50, 5);
INSERT INTO metrics VALUES('a', 1, 1, 2, 0, 11.5, 'step_time', 0.25, 50, 2);
INSERT INTO metrics VALUES('c', 2, 0, 7, 1, 20.0, 'loss', 0.5, 0, 0);
INSERT INTO job_events VALUES('b', 'QUEUED', NULL, NULL, 5.0);
INSERT INTO job_events VALUES('a', 'RUNNING', 1, 'started', 9.0);
PRAGMA user_version=3;
)sql")
                  .ok());
}

TEST(MetricsStoreSchema, SchemaThreeDataDirMigratesAndReadsTheSame) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/monitor.db";
  WriteSchemaThree(path);
  auto store = MetricsStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(UserVersion(path), MetricsStore::kSchemaVersion);

  auto points = store->Points("a", -1, 100);
  ASSERT_TRUE(points.ok()) << points.status().ToString();
  // Schema 3 read these as: step 1 rank 0 {accuracy, loss}; step 1 rank 1;
  // step 2 rank 0 {loss NaN, test_loss} (one point: same epoch and time);
  // step 2 rank 1; step 3 rank 0 {loss +Inf}.
  ASSERT_EQ(points->size(), 5u);
  const auto& p = *points;
  EXPECT_EQ(p[0].step, 1);
  EXPECT_EQ(p[0].rank, 0);
  ASSERT_EQ(p[0].values.size(), 2u);
  EXPECT_EQ(p[0].values[0].first, "accuracy");
  EXPECT_EQ(p[0].values[1].first, "loss");
  EXPECT_EQ(p[0].values[1].second, 2.5);
  EXPECT_EQ(p[0].total_steps, 50);
  EXPECT_EQ(p[0].job_id, "a");
  EXPECT_EQ(p[1].rank, 1);
  EXPECT_EQ(p[1].time, 10.5);
  EXPECT_EQ(p[2].step, 2);
  ASSERT_EQ(p[2].values.size(), 2u);
  EXPECT_TRUE(std::isnan(p[2].values[0].second));
  EXPECT_EQ(p[2].values[1].first, "test_loss");
  EXPECT_EQ(p[3].rank, 1);
  EXPECT_EQ(p[3].step, 2);
  EXPECT_EQ(p[4].values[0].second, kInf);

  // after and limit as before.
  auto later = store->Points("a", 1, 2);
  ASSERT_TRUE(later.ok());
  ASSERT_EQ(later->size(), 2u);
  EXPECT_EQ((*later)[0].step, 2);
  EXPECT_EQ((*later)[0].values.size(), 2u);

  auto c = store->Points("c", -1, 100);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].attempt, 2);
  EXPECT_EQ((*c)[0].epoch, 1);
  EXPECT_EQ((*c)[0].total_steps, 0);

  // Seqs: rank 0 stored 1, 2, 3, 5; rank 1 stored 1, 2; c none.
  auto s0 = store->Seqs("a", 1, 0);
  ASSERT_TRUE(s0.ok());
  EXPECT_EQ(s0->floor, 3);
  EXPECT_EQ(s0->above, std::vector<int64_t>{5});
  auto s1 = store->Seqs("a", 1, 1);
  ASSERT_TRUE(s1.ok());
  EXPECT_EQ(s1->floor, 2);
  EXPECT_TRUE(s1->above.empty());
  auto sc = store->Seqs("c", 2, 0);
  ASSERT_TRUE(sc.ok());
  EXPECT_EQ(sc->floor, 0);

  // Latest: the oldest of the ranks' newest steps (rank 1: 2) onwards.
  auto latest = store->LatestPoints("a");
  ASSERT_TRUE(latest.ok());
  ASSERT_EQ(latest->size(), 3u);
  EXPECT_EQ(latest->front().step, 2);

  auto ids = store->JobIds();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"a", "b", "c"}));
  for (const char* known : {"a", "b", "c"}) {
    auto has = store->HasJob(known);
    ASSERT_TRUE(has.ok());
    EXPECT_TRUE(*has) << known;
  }
  auto none = store->HasJob("d");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  auto events = store->Events("a");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].reason, "started");

  // A value stored before the migration is still a duplicate after it.
  ASSERT_TRUE(store->Write({Point("a", 0, 1, 10.0, {{"loss", 9.0}, {"lr", 0.1}})}, {}).ok());
  auto again = store->Points("a", 0, 3);
  ASSERT_TRUE(again.ok());
  // Step 1 in arrival order: rank 0 {accuracy, loss}, rank 1, rank 0 {lr}
  // (schema 3 gave the same three).
  ASSERT_EQ(again->size(), 3u);
  ASSERT_EQ((*again)[0].values.size(), 2u);
  EXPECT_EQ((*again)[0].values[1].second, 2.5);  // the first loss stays
  ASSERT_EQ((*again)[2].values.size(), 1u);
  EXPECT_EQ((*again)[2].values[0].first, "lr");  // the new name is added

  // Reopening a schema-4 file migrates nothing.
  auto reopened = MetricsStore::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto all = reopened->Points("a", -1, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 6u);  // the five, and step 1's {lr}
}

TEST(MetricsStoreSchema, ANewerSchemaIsRefused) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/monitor.db";
  {
    auto db = sql::Db::Open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec("PRAGMA user_version=99").ok());
  }
  auto store = MetricsStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status().ToString();
}

TEST(MetricsStoreSchema, RepeatedValuesAreSkippedAndNewNamesKept) {
  testing::TempDir dir;
  auto store = MetricsStore::Open(dir.path() + "/monitor.db");
  ASSERT_TRUE(store.ok());
  // One transaction with a point, its exact repeat, and a later point of the
  // same step that repeats one name and adds one.
  ASSERT_TRUE(store->Write({Point("j", 0, 5, 1.0, {{"loss", 1.0}, {"acc", kNaN}}),
                            Point("j", 0, 5, 1.0, {{"loss", 1.0}, {"acc", kNaN}}),
                            Point("j", 0, 6, 2.0, {{"loss", 0.5}})},
                           {})
                  .ok());
  ASSERT_TRUE(store->Write({Point("j", 0, 5, 1.0, {{"acc", 7.0}, {"lr", 0.1}}),
                            Point("j", 1, 5, 1.0, {{"loss", 3.0}})},  // another rank: its own values
                           {})
                  .ok());
  auto points = store->Points("j", -1, 100);
  ASSERT_TRUE(points.ok());
  ASSERT_EQ(points->size(), 3u);
  const auto& first = (*points)[0];
  ASSERT_EQ(first.values.size(), 3u);
  EXPECT_EQ(first.values[0].first, "loss");
  EXPECT_TRUE(std::isnan(first.values[1].second)) << "the first acc stays";
  EXPECT_EQ(first.values[2].first, "lr");
  EXPECT_EQ((*points)[1].rank, 1);
  EXPECT_EQ((*points)[2].step, 6);
}

TEST(MetricsStoreSchema, StoredSeqsSurviveReopeningWithGaps) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/monitor.db";
  {
    auto store = MetricsStore::Open(path);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->Write({Point("j", 0, 1, 1.0, {{"loss", 1.0}}, 1), Point("j", 0, 2, 2.0, {{"loss", 1.0}}, 2)},
                             {})
                    .ok());
    ASSERT_TRUE(store->Write({Point("j", 0, 4, 4.0, {{"loss", 1.0}}, 4)}, {}).ok());
  }
  auto store = MetricsStore::Open(path);
  ASSERT_TRUE(store.ok());
  auto seqs = store->Seqs("j", 1, 0);
  ASSERT_TRUE(seqs.ok());
  EXPECT_EQ(seqs->floor, 2);
  EXPECT_EQ(seqs->above, std::vector<int64_t>{4});
  ASSERT_TRUE(store->Write({Point("j", 0, 3, 3.0, {{"loss", 1.0}}, 3)}, {}).ok());
  seqs = store->Seqs("j", 1, 0);
  ASSERT_TRUE(seqs.ok());
  EXPECT_EQ(seqs->floor, 4);
  EXPECT_TRUE(seqs->above.empty());
}

TEST(IngestWriterTest, ThreadedWriterSignalsAfterTheCommit) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/monitor.db";
  auto store = MetricsStore::Open(path);
  ASSERT_TRUE(store.ok());
  auto reader = MetricsStore::Open(path);
  ASSERT_TRUE(reader.ok());
  IngestWriter writer(*store, /*threaded=*/true);
  ASSERT_GE(writer.fd(), 0);
  IngestBatch batch;
  batch.points.push_back(Point("j", 0, 1, 1.0, {{"loss", 1.0}}, 1));
  batch.seqs.push_back({SenderKey{"j", 1, 0}, 1});
  writer.Submit(std::move(batch));
  pollfd pfd{writer.fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "no commit signal within 10 s";
  writer.ClearSignal();
  auto committed = writer.TakeCommitted();
  ASSERT_EQ(committed.size(), 1u);
  EXPECT_EQ(committed[0].second, 1);
  EXPECT_EQ(writer.pending(), 0u);
  // Signalled means committed: another connection sees the point.
  auto points = reader->Points("j", -1, 10);
  ASSERT_TRUE(points.ok());
  EXPECT_EQ(points->size(), 1u);
  // WaitIdle returns once a later batch is committed too.
  IngestBatch more;
  more.points.push_back(Point("j", 0, 2, 2.0, {{"loss", 0.5}}, 2));
  more.seqs.push_back({SenderKey{"j", 1, 0}, 2});
  writer.Submit(std::move(more));
  ASSERT_TRUE(writer.WaitIdle().ok());
  points = reader->Points("j", -1, 10);
  ASSERT_TRUE(points.ok());
  EXPECT_EQ(points->size(), 2u);
  EXPECT_EQ(writer.TakeCommitted().size(), 1u);
}

}  // namespace
}  // namespace gantry::monitor
