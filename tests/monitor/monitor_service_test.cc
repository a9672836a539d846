// MonitorService driven directly (no sockets): ingest, batching, queries.
#include "monitor/monitor_service.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/monitor/test_support.h"

namespace gantry::monitor {
namespace {

using testing::Frame;
using testing::MetricsBody;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

class MonitorServiceTest : public ::testing::Test {
 protected:
  MonitorServiceTest()
      : service_(ctx_, std::move(MetricsStore::Open(DbPath())).value(), clock_, MonitorOptions{}) {}

  std::string DbPath() const { return dir_.path() + "/monitor.db"; }
  // A second handle on the database: sees only what has been flushed.
  int64_t StoredPoints(const std::string& job) {
    auto store = MetricsStore::Open(DbPath());
    EXPECT_TRUE(store.ok());
    auto points = store->Points(job, -1, 1000000);
    EXPECT_TRUE(points.ok());
    return static_cast<int64_t>(points->size());
  }
  json Metrics(const json& body) {
    auto r = service_.GetMetrics(body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? (*r)["points"] : json();
  }

  testing::TempDir dir_;
  ManualClock clock_;
  zmq::context_t ctx_;
  MonitorService service_;
};

TEST_F(MonitorServiceTest, PointsComeBackInStepOrderWithNonFiniteValues) {
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 3, {{"loss", kInf}, {"acc", 0.5}})));
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 1, {{"loss", 2.5}})));
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 2, {{"loss", kNaN}})));
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 2, {{"loss", -kInf}}, /*rank=*/1)));
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-other", 1, {{"loss", 9}})));

  json points = Metrics({{"job_id", "j-1"}});  // flushes first
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(points[0]["step"], 1);
  EXPECT_DOUBLE_EQ(points[0]["values"]["loss"].get<double>(), 2.5);
  EXPECT_EQ(points[1]["step"], 2);
  EXPECT_EQ(points[1]["rank"], 0);
  EXPECT_TRUE(std::isnan(points[1]["values"]["loss"].get<double>()));
  EXPECT_EQ(points[2]["rank"], 1);
  EXPECT_EQ(points[2]["values"]["loss"].get<double>(), -kInf);
  EXPECT_EQ(points[3]["step"], 3);
  EXPECT_EQ(points[3]["values"]["loss"].get<double>(), kInf);
  EXPECT_DOUBLE_EQ(points[3]["values"]["acc"].get<double>(), 0.5);
  EXPECT_EQ(points[3]["attempt"], 1);
  EXPECT_EQ(points[3]["epoch"], 0);
  EXPECT_DOUBLE_EQ(points[3]["time"].get<double>(), 1.7e9 + 3);

  // NaN also survives the wire encoding of the reply.
  auto wire = json::from_msgpack(ToMsgpack(points));
  EXPECT_TRUE(std::isnan(wire[1]["values"]["loss"].get<double>()));

  json after = Metrics({{"job_id", "j-1"}, {"after_step", 2}});
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0]["step"], 3);
  EXPECT_EQ(Metrics({{"job_id", "j-1"}, {"limit", 2}}).size(), 2u);
  EXPECT_EQ(Metrics({{"job_id", "nobody"}}).size(), 0u);
  EXPECT_FALSE(service_.GetMetrics({{"job_id", "j-1"}, {"limit", 0}}).ok());
  EXPECT_FALSE(service_.GetMetrics(json::object()).ok());
}

// The run's planned step count is stored with each point, so a replayed
// history (gantry watch on a finished job) can show step/total.
TEST_F(MonitorServiceTest, TotalStepsComeBackWithStoredPoints) {
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 1, {{"loss", 1.0}})));  // total_steps 100
  json without = MetricsBody("j-1", 2, {{"loss", 0.5}});
  without.erase("total_steps");
  service_.OnIngestFrame(Frame("metrics", without));
  json points = Metrics({{"job_id", "j-1"}});
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0]["total_steps"], 100);
  EXPECT_FALSE(points[1].contains("total_steps")) << "0 means not reported and is left out";
  json negative = MetricsBody("j-1", 3, {{"loss", 0.5}});
  negative["total_steps"] = -1;
  service_.OnIngestFrame(Frame("metrics", negative));
  EXPECT_EQ(Metrics({{"job_id", "j-1"}}).size(), 2u) << "a negative total_steps is refused";
}

// A database written before total_steps existed (schema 1) opens, migrates
// and keeps its points.
TEST(MetricsStoreMigration, SchemaOneDatabaseGainsTotalSteps) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/old.db";
  {
    auto db = sql::Db::Open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec("CREATE TABLE metrics(job_id TEXT NOT NULL, attempt INTEGER NOT NULL, rank INTEGER "
                         "NOT NULL, step INTEGER NOT NULL, epoch INTEGER NOT NULL, time REAL NOT NULL, name TEXT "
                         "NOT NULL, value REAL);"
                         "CREATE INDEX metrics_job_step ON metrics(job_id, step);"
                         "CREATE TABLE job_events(job_id TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER, "
                         "reason TEXT, time REAL NOT NULL);"
                         "CREATE INDEX job_events_job ON job_events(job_id);"
                         "INSERT INTO metrics VALUES('j-old', 1, 0, 7, 0, 1.7e9, 'loss', 0.25);"
                         "PRAGMA user_version=1;")
                    .ok());
  }
  auto store = MetricsStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto points = store->Points("j-old", -1, 10);
  ASSERT_TRUE(points.ok()) << points.status().ToString();
  ASSERT_EQ(points->size(), 1u);
  EXPECT_EQ((*points)[0]["step"], 7);
  EXPECT_DOUBLE_EQ((*points)[0]["values"]["loss"].get<double>(), 0.25);
  EXPECT_FALSE((*points)[0].contains("total_steps"));
}

TEST_F(MonitorServiceTest, BufferIsWrittenWhenOldEnoughNotBefore) {
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 1, {{"loss", 1}})));
  service_.Tick();
  EXPECT_EQ(StoredPoints("j-1"), 0);
  clock_.Advance(std::chrono::milliseconds(89));
  service_.Tick();
  EXPECT_EQ(StoredPoints("j-1"), 0);
  clock_.Advance(std::chrono::milliseconds(1));
  service_.Tick();
  EXPECT_EQ(StoredPoints("j-1"), 1);
}

TEST_F(MonitorServiceTest, BufferIsWrittenWhenFull) {
  for (int i = 0; i < 999; ++i) {
    service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", i, {{"loss", 1}})));
    service_.Tick();
  }
  EXPECT_EQ(StoredPoints("j-1"), 0);
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 999, {{"loss", 1}})));
  service_.Tick();
  EXPECT_EQ(StoredPoints("j-1"), 1000);
}

TEST_F(MonitorServiceTest, ShutdownWritesWhatIsBuffered) {
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 1, {{"loss", 1}})));
  ASSERT_TRUE(service_.Shutdown().ok());
  EXPECT_EQ(StoredPoints("j-1"), 1);
}

TEST_F(MonitorServiceTest, JobStateEventsAreStoredInOrder) {
  service_.OnIngestFrame(Frame("job_state", {{"job_id", "j-1"}, {"state", "QUEUED"}, {"time", 1.0}}));
  service_.OnIngestFrame(Frame("job_state", {{"job_id", "j-1"}, {"state", "RUNNING"}, {"attempt", 1},
                                             {"time", 2.0}}));
  service_.OnIngestFrame(Frame("job_state", {{"job_id", "j-1"}, {"state", "FAILED"}, {"attempt", 1},
                                             {"reason", "exit code 3"}, {"time", 3.0}}));
  auto events = service_.GetEvents({{"job_id", "j-1"}});
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  EXPECT_EQ((*events)["job_id"], "j-1");
  EXPECT_EQ((*events)["events"], json::parse(R"([
      {"state": "QUEUED", "time": 1.0},
      {"state": "RUNNING", "attempt": 1, "time": 2.0},
      {"state": "FAILED", "attempt": 1, "reason": "exit code 3", "time": 3.0}])"));
  EXPECT_EQ(service_.Stats()["events_ingested"], 3);
}

TEST_F(MonitorServiceTest, MalformedFramesAreCountedAndDropped) {
  std::string deep(100, '\x91');  // 100 nested one-element arrays
  deep += '\x01';
  const std::vector<std::string> bad = {
      "",
      "not msgpack at all",
      deep,
      ToMsgpack(42),
      ToMsgpack({{"type", "metrics"}, {"body", MetricsBody("j-1", 1, {{"a", 1}})}}),  // no v
      ToMsgpack({{"v", 2}, {"type", "metrics"}, {"body", MetricsBody("j-1", 1, {{"a", 1}})}}),
      Frame("bogus", MetricsBody("j-1", 1, {{"a", 1}})),
      Frame("metrics", "not a map"),
      Frame("metrics", MetricsBody("j-1", 1, json::object())),
      Frame("metrics", MetricsBody("j-1", 1, {{"a", "high"}})),
      Frame("metrics", MetricsBody("../etc", 1, {{"a", 1}})),
      Frame("metrics", MetricsBody("j-1", -1, {{"a", 1}})),
      Frame("metrics", [] { json b = MetricsBody("j-1", 1, {{"a", 1}}); b["step"] = "1"; return b; }()),
      Frame("metrics", [] { json b = MetricsBody("j-1", 1, {{"a", 1}}); b["time"] = kNaN; return b; }()),
      Frame("metrics", [] { json b = MetricsBody("j-1", 1, {{"a", 1}}); b.erase("rank"); return b; }()),
      Frame("job_state", {{"job_id", "j-1"}, {"time", 1.0}}),
      Frame("job_state", {{"job_id", "j-1"}, {"state", "RUNNING"}, {"reason", 5}, {"time", 1.0}}),
  };
  for (const auto& frame : bad) service_.OnIngestFrame(frame);
  json stats = service_.Stats();
  EXPECT_EQ(stats["messages_dropped"], static_cast<int64_t>(bad.size()));
  EXPECT_EQ(stats["points_ingested"], 0);

  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 1, {{"a", 1}})));
  EXPECT_EQ(service_.Stats()["points_ingested"], 1);
  EXPECT_EQ(Metrics({{"job_id", "j-1"}}).size(), 1u);
}

}  // namespace
}  // namespace gantry::monitor
