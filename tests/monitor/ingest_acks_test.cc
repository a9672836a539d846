// At-least-once ingest: SeqSet, IngestAcks, and MonitorService dropping
// re-sent points before the store, the feed and the observers see them;
// the store's unique index and its migration from schema 2.
#include "monitor/ingest_acks.h"

#include <gtest/gtest.h>

#include "common/sqlite.h"
#include "monitor/monitor_service.h"
#include "tests/monitor/test_support.h"

namespace gantry::monitor {
namespace {

using testing::Frame;
using testing::MetricsBody;

json Sequenced(const std::string& job, int64_t step, int64_t seq, json values, int64_t rank = 0) {
  json b = MetricsBody(job, step, std::move(values), rank);
  b["seq"] = seq;
  return b;
}

TEST(SeqSet, FloorAdvancesOnlyOverAContiguousRun) {
  SeqSet s;
  EXPECT_TRUE(s.Insert(1));
  EXPECT_TRUE(s.Insert(3));
  EXPECT_TRUE(s.Insert(4));
  EXPECT_EQ(s.floor(), 1);  // 2 is missing
  EXPECT_TRUE(s.Contains(3));
  EXPECT_FALSE(s.Contains(2));
  EXPECT_FALSE(s.Insert(3));
  EXPECT_TRUE(s.Insert(2));
  EXPECT_EQ(s.floor(), 4);
  EXPECT_FALSE(s.Insert(1));
  EXPECT_FALSE(s.Insert(0));  // not a sequence number
}

TEST(IngestAcks, LoadsWhatTheStoreHoldsAndAcksTheCommittedPrefix) {
  int loads = 0;
  IngestAcks acks([&](const SenderKey& k) -> Result<StoredSeqs> {
    ++loads;
    if (k.rank == 0) return StoredSeqs{3, {5}};  // 1, 2, 3, 5
    return StoredSeqs{};
  });
  SenderKey r0{"j", 1, 0}, r1{"j", 1, 1};
  EXPECT_TRUE(acks.IsRepeat(r0, 2, "id0"));   // stored by an earlier monitor process
  EXPECT_FALSE(acks.IsRepeat(r0, 4, "id0"));  // lost before it was stored
  acks.Received(r0, 4);
  EXPECT_TRUE(acks.IsRepeat(r0, 4, "id0"));   // buffered now: a repeat
  EXPECT_FALSE(acks.IsRepeat(r1, 1, "id1"));
  acks.Received(r1, 1);
  EXPECT_EQ(loads, 2);
  // Received but not committed: the acks stay where the store is.
  auto due = acks.TakeDue();
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].routing_id, "id0");
  EXPECT_EQ(due[0].ack.seq, 3);
  EXPECT_EQ(due[1].ack.rank, 1);
  EXPECT_EQ(due[1].ack.seq, 0);
  EXPECT_TRUE(acks.TakeDue().empty());  // each ack once
  acks.Committed(r0, 4);
  (void)acks.IsRepeat(r0, 6, "id0-new");  // a reconnect: the new routing id wins
  due = acks.TakeDue();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].routing_id, "id0-new");
  EXPECT_EQ(due[0].ack.seq, 5);  // 1..5 committed
}

TEST(IngestAcks, ForgetsIdleSendersBeyondTheBoundAndReloadsThem) {
  int loads = 0;
  IngestAcks acks([&](const SenderKey&) -> Result<StoredSeqs> {
    ++loads;
    return StoredSeqs{1, {}};
  }, /*max_senders=*/2);
  for (int r = 0; r < 3; ++r) {
    EXPECT_TRUE(acks.IsRepeat({"j", 1, r}, 1, "id"));
    (void)acks.TakeDue();
  }
  EXPECT_LE(acks.senders(), 2u);
  EXPECT_TRUE(acks.IsRepeat({"j", 1, 0}, 1, "id"));  // reloaded from the store
  EXPECT_EQ(loads, 4);
}

class CountingObserver : public IngestObserver {
 public:
  void OnMessage(const IngestMessage&) override { ++messages; }
  int messages = 0;
};

class IngestDedupTest : public ::testing::Test {
 protected:
  std::unique_ptr<MonitorService> Start() {
    auto store = MetricsStore::Open(DbPath());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    auto s = std::make_unique<MonitorService>(ctx_, std::move(store).value(), clock_, MonitorOptions{});
    s->AddObserver(&observer_);
    return s;
  }
  std::string DbPath() const { return dir_.path() + "/monitor.db"; }

  testing::TempDir dir_;
  ManualClock clock_;
  zmq::context_t ctx_;
  CountingObserver observer_;
};

TEST_F(IngestDedupTest, ARepeatIsDroppedBeforeObserversAndStore) {
  auto service = Start();
  service->OnIngestFrame(Frame("metrics", Sequenced("j", 10, 1, {{"loss", 1.0}})));
  service->OnIngestFrame(Frame("metrics", Sequenced("j", 10, 2, {{"test_loss", 2.0}})));
  service->OnIngestFrame(Frame("metrics", Sequenced("j", 10, 1, {{"loss", 1.0}})));  // buffered repeat
  ASSERT_TRUE(service->Flush().ok());
  service->OnIngestFrame(Frame("metrics", Sequenced("j", 10, 2, {{"test_loss", 2.0}})));  // stored repeat
  auto points = service->GetMetrics({"j"});
  ASSERT_TRUE(points.ok());
  // The history merges a step's training and evaluation values (same time).
  ASSERT_EQ(points->size(), 1u);
  EXPECT_EQ((*points)[0].values.size(), 2u);  // loss and test_loss, once each
  EXPECT_EQ(observer_.messages, 2);
  EXPECT_EQ(service->Stats().points_repeated, 2);
  EXPECT_EQ(service->Stats().points_ingested, 2);
}

TEST_F(IngestDedupTest, ARestartedMonitorKnowsWhatItStored) {
  {
    auto service = Start();
    service->OnIngestFrame(Frame("metrics", Sequenced("j", 5, 1, {{"loss", 1.0}, {"accuracy", 0.5}})));
    ASSERT_TRUE(service->Shutdown().ok());
  }
  auto service = Start();
  observer_.messages = 0;
  service->OnIngestFrame(Frame("metrics", Sequenced("j", 5, 1, {{"loss", 1.0}, {"accuracy", 0.5}})));
  service->OnIngestFrame(Frame("metrics", Sequenced("j", 10, 2, {{"loss", 0.5}})));
  EXPECT_EQ(observer_.messages, 1);
  EXPECT_EQ(service->Stats().points_repeated, 1);
  auto points = service->GetMetrics({"j"});
  ASSERT_TRUE(points.ok());
  ASSERT_EQ(points->size(), 2u);
  EXPECT_EQ((*points)[0].values.size(), 2u);
  EXPECT_EQ((*points)[1].step, 10);
}

TEST_F(IngestDedupTest, UnsequencedRepeatsAreStoredOnce) {
  auto service = Start();
  for (int i = 0; i < 2; ++i) {
    service->OnIngestFrame(Frame("metrics", MetricsBody("j", 3, {{"loss", 1.0}})));
    ASSERT_TRUE(service->Flush().ok());
  }
  auto points = service->GetMetrics({"j"});
  ASSERT_TRUE(points.ok());
  EXPECT_EQ(points->size(), 1u);  // the unique index (job, attempt, rank, step, name)
}

TEST_F(IngestDedupTest, MigrationKeepsTheFirstOfDuplicateRows) {
  {
    auto db = sql::Db::Open(DbPath());
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec(R"sql(
CREATE TABLE metrics(job_id TEXT NOT NULL, attempt INTEGER NOT NULL, rank INTEGER NOT NULL,
  step INTEGER NOT NULL, epoch INTEGER NOT NULL, time REAL NOT NULL, name TEXT NOT NULL, value REAL,
  total_steps INTEGER NOT NULL DEFAULT 0);
CREATE INDEX metrics_job_step ON metrics(job_id, step);
CREATE TABLE job_events(job_id TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER, reason TEXT,
  time REAL NOT NULL);
CREATE INDEX job_events_job ON job_events(job_id);
INSERT INTO metrics VALUES('j', 1, 0, 5, 0, 1.0, 'loss', 0.5, 10);
INSERT INTO metrics VALUES('j', 1, 0, 5, 0, 2.0, 'loss', 0.7, 10);
INSERT INTO metrics VALUES('j', 1, 0, 6, 0, 3.0, 'loss', 0.4, 10);
PRAGMA user_version=2;
)sql").ok());
  }
  auto store = MetricsStore::Open(DbPath());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto points = store->Points("j", -1, 100);
  ASSERT_TRUE(points.ok());
  ASSERT_EQ(points->size(), 2u);
  EXPECT_EQ((*points)[0].values[0].second, 0.5);
  auto seqs = store->Seqs("j", 1, 0);
  ASSERT_TRUE(seqs.ok());
  EXPECT_EQ(seqs->floor, 0);  // old rows are not sequenced
  EXPECT_TRUE(seqs->above.empty());
}

}  // namespace
}  // namespace gantry::monitor
