// MonitorService driven directly (no sockets): ingest, batching, queries.
#include "monitor/monitor_service.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "monitor/monitor_api.h"

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
    return points.ok() ? static_cast<int64_t>(points->size()) : -1;
  }
  std::vector<MetricsPoint> Metrics(const MetricsQuery& q) {
    auto r = service_.GetMetrics(q);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<MetricsPoint>{};
  }
  // The value of `name` in `p`; fails the test when absent.
  static double Value(const MetricsPoint& p, const std::string& name) {
    for (const auto& [n, v] : p.values) {
      if (n == name) return v;
    }
    ADD_FAILURE() << "no value " << name << " at step " << p.step;
    return 0;
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

  auto points = Metrics({"j-1"});  // flushes first
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(points[0].step, 1);
  EXPECT_EQ(points[0].job_id, "j-1");
  EXPECT_DOUBLE_EQ(Value(points[0], "loss"), 2.5);
  EXPECT_EQ(points[1].step, 2);
  EXPECT_EQ(points[1].rank, 0);
  EXPECT_TRUE(std::isnan(Value(points[1], "loss")));
  EXPECT_EQ(points[2].rank, 1);
  EXPECT_EQ(Value(points[2], "loss"), -kInf);
  EXPECT_EQ(points[3].step, 3);
  EXPECT_EQ(Value(points[3], "loss"), kInf);
  EXPECT_DOUBLE_EQ(Value(points[3], "acc"), 0.5);
  EXPECT_EQ(points[3].values.size(), 2u);
  EXPECT_EQ(points[3].attempt, 1);
  EXPECT_EQ(points[3].epoch, 0);
  EXPECT_DOUBLE_EQ(points[3].time, 1.7e9 + 3);

  auto after = Metrics({"j-1", /*after_step=*/2});
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].step, 3);
  EXPECT_EQ(Metrics({"j-1", -1, /*limit=*/2}).size(), 2u);
  EXPECT_TRUE(Metrics({"j-1", /*after_step=*/3}).empty()) << "a known job past its last step";
  EXPECT_EQ(service_.GetMetrics({"j-1", -1, 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_.GetMetrics({""}).status().code(), StatusCode::kInvalidArgument);
}

// A job is known once the store holds a point or an event of it; queries
// about any other job are not_found.
TEST_F(MonitorServiceTest, UnknownJobsAreNotFound) {
  auto metrics = service_.GetMetrics({"nobody"});
  EXPECT_EQ(metrics.status().code(), StatusCode::kNotFound);
  EXPECT_NE(metrics.status().message().find("'nobody'"), std::string::npos) << metrics.status().message();
  EXPECT_EQ(service_.GetEvents("nobody").status().code(), StatusCode::kNotFound);

  // An event alone makes the job known to both queries (still buffered:
  // the query flushes first).
  service_.OnIngestFrame(Frame("job_state", {{"job_id", "j-ev"}, {"state", "QUEUED"}, {"time", 1.0}}));
  auto none = service_.GetMetrics({"j-ev"});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  // A point alone likewise.
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-pt", 1, {{"loss", 1}})));
  auto no_events = service_.GetEvents("j-pt");
  ASSERT_TRUE(no_events.ok()) << no_events.status().ToString();
  EXPECT_TRUE(no_events->empty());
  EXPECT_EQ(service_.GetMetrics({"nobody"}).status().code(), StatusCode::kNotFound);
}

// The api handlers (monitor_api.h) build the wire bodies from the typed
// results; driven through RpcServer::Dispatch, without sockets.
TEST_F(MonitorServiceTest, ApiRepliesInWireForm) {
  RpcServer server(ctx_, RpcServerOptions{});
  service_.Attach(server);
  auto call = [&](const std::string& type, const json& body) {
    auto rep = DecodeReply(server.Dispatch(EncodeRequest(type, "r-" + type, "", body)));
    EXPECT_TRUE(rep.ok()) << rep.status().ToString();
    EXPECT_EQ(rep->id, "r-" + type);
    return rep.ok() ? *rep : Reply{};
  };
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 1, {{"loss", kNaN}, {"acc", 0.5}})));
  json without_total = MetricsBody("j-1", 2, {{"loss", 0.25}});
  without_total.erase("total_steps");
  service_.OnIngestFrame(Frame("metrics", without_total));
  service_.OnIngestFrame(Frame("job_state", {{"job_id", "j-1"}, {"state", "FAILED"}, {"attempt", 2},
                                             {"reason", "exit code 3"}, {"time", 3.0}}));

  Reply metrics = call("get_metrics", {{"job_id", "j-1"}});
  ASSERT_TRUE(metrics.status.ok()) << metrics.status.ToString();
  EXPECT_EQ(metrics.body["job_id"], "j-1");
  ASSERT_EQ(metrics.body["points"].size(), 2u);
  const json& p = metrics.body["points"][0];
  EXPECT_EQ(p["rank"], 0);
  EXPECT_EQ(p["attempt"], 1);
  EXPECT_EQ(p["step"], 1);
  EXPECT_EQ(p["epoch"], 0);
  EXPECT_DOUBLE_EQ(p["time"].get<double>(), 1.7e9 + 1);
  EXPECT_EQ(p["total_steps"], 100);
  EXPECT_TRUE(std::isnan(p["values"]["loss"].get<double>())) << "NaN survives the wire";
  EXPECT_DOUBLE_EQ(p["values"]["acc"].get<double>(), 0.5);
  EXPECT_FALSE(metrics.body["points"][1].contains("total_steps")) << "0 = not reported, left out";

  Reply events = call("get_events", {{"job_id", "j-1"}});
  ASSERT_TRUE(events.status.ok()) << events.status.ToString();
  EXPECT_EQ(events.body, json::parse(R"({"job_id": "j-1", "events": [
      {"state": "FAILED", "attempt": 2, "reason": "exit code 3", "time": 3.0}]})"));

  Reply stats = call("stats", json::object());
  EXPECT_EQ(stats.body, json::parse(R"({"points_ingested": 2, "events_ingested": 1,
                                        "messages_dropped": 0, "points_repeated": 0, "buffered": 0})"));

  EXPECT_EQ(call("get_metrics", {{"job_id", "nobody"}}).status.code(), StatusCode::kNotFound);
  EXPECT_EQ(call("get_events", {{"job_id", "nobody"}}).status.code(), StatusCode::kNotFound);
  Reply bad_limit = call("get_metrics", {{"job_id", "j-1"}, {"limit", "all"}});
  EXPECT_EQ(bad_limit.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_limit.status.message().find("'limit'"), std::string::npos) << bad_limit.status.message();
  EXPECT_EQ(call("get_events", json::object()).status.code(), StatusCode::kInvalidArgument);
}

// The run's planned step count is stored with each point, so a replayed
// history (gantry watch on a finished job) can show step/total.
TEST_F(MonitorServiceTest, TotalStepsComeBackWithStoredPoints) {
  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 1, {{"loss", 1.0}})));  // total_steps 100
  json without = MetricsBody("j-1", 2, {{"loss", 0.5}});
  without.erase("total_steps");
  service_.OnIngestFrame(Frame("metrics", without));
  auto points = Metrics({"j-1"});
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].total_steps, 100);
  EXPECT_EQ(points[1].total_steps, 0) << "0 means not reported";
  json negative = MetricsBody("j-1", 3, {{"loss", 0.5}});
  negative["total_steps"] = -1;
  service_.OnIngestFrame(Frame("metrics", negative));
  EXPECT_EQ(Metrics({"j-1"}).size(), 2u) << "a negative total_steps is refused";
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
  EXPECT_EQ((*points)[0].step, 7);
  ASSERT_EQ((*points)[0].values.size(), 1u);
  EXPECT_EQ((*points)[0].values[0].first, "loss");
  EXPECT_DOUBLE_EQ((*points)[0].values[0].second, 0.25);
  EXPECT_EQ((*points)[0].total_steps, 0);
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
  auto events = service_.GetEvents("j-1");
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 3u);
  const auto& e = *events;
  EXPECT_EQ(e[0].job_id, "j-1");
  EXPECT_EQ(e[0].state, "QUEUED");
  EXPECT_FALSE(e[0].attempt.has_value());
  EXPECT_FALSE(e[0].reason.has_value());
  EXPECT_DOUBLE_EQ(e[0].time, 1.0);
  EXPECT_EQ(e[1].state, "RUNNING");
  EXPECT_EQ(e[1].attempt, 1);
  EXPECT_FALSE(e[1].reason.has_value());
  EXPECT_EQ(e[2].state, "FAILED");
  EXPECT_EQ(e[2].reason, "exit code 3");
  EXPECT_DOUBLE_EQ(e[2].time, 3.0);
  EXPECT_EQ(service_.Stats().events_ingested, 3);
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
  MonitorStats stats = service_.Stats();
  EXPECT_EQ(stats.messages_dropped, static_cast<int64_t>(bad.size()));
  EXPECT_EQ(stats.points_ingested, 0);
  EXPECT_EQ(stats.buffered, 0);

  service_.OnIngestFrame(Frame("metrics", MetricsBody("j-1", 1, {{"a", 1}})));
  EXPECT_EQ(service_.Stats().points_ingested, 1);
  EXPECT_EQ(service_.Stats().buffered, 1);
  EXPECT_EQ(Metrics({"j-1"}).size(), 1u);
}

}  // namespace
}  // namespace gantry::monitor
