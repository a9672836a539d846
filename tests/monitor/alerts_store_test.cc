// Alert persistence: state changes are stored, and a reopened store gives a
// new engine the same firing alert with the same since-time.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/clock.h"
#include "common/config.h"
#include "monitor/alerts/alert_store.h"
#include "monitor/alerts/engine.h"
#include "tests/monitor/test_support.h"

namespace gantry::monitor::alerts {
namespace {

using std::chrono::seconds;

std::vector<Rule> TestRules() {
  auto j = YamlToJson(
      "alerts:\n"
      "  - {name: loss-nan, kind: nonfinite, action: cancel, labels: {team: vision}}\n"
      "  - {name: big-grad, kind: threshold, metric: grad_norm, value: 5, for: 10m}\n");
  EXPECT_TRUE(j.ok());
  auto r = ParseRules((*j)["alerts"], "alerts", RuleScope::kCluster, "alerts file");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return *r;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

MetricSample Loss(int64_t step, double loss, double grad_norm = 1.0) {
  return MetricSample{"job-7", 1, 0, step, {{"loss", loss}, {"grad_norm", grad_norm}}};
}

class AlertStoreTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  std::string path_ = dir_.path() + "/monitor.db";
  ManualClock clock_;
};

TEST_F(AlertStoreTest, FiringAlertSurvivesReopenWithItsSinceTime) {
  const double t0 = clock_.WallSeconds();
  {
    auto store = AlertStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    AlertEngine engine(clock_, TestRules());
    ASSERT_TRUE(store->Record(engine.ObserveMetrics(Loss(10, 1.0))).ok());
    clock_.Advance(seconds(30));
    auto ts = engine.ObserveMetrics(Loss(20, kNaN, 9.0));  // loss-nan fires, big-grad pending
    ASSERT_EQ(ts.size(), 2u);
    ASSERT_TRUE(store->Record(ts).ok());
    clock_.Advance(seconds(30));
    ts = engine.ObserveMetrics(Loss(30, 7.0, 9.0));  // loss-nan resolves
    ASSERT_EQ(ts.size(), 1u);
    ASSERT_TRUE(store->Record(ts).ok());
    clock_.Advance(seconds(30));
    ts = engine.ObserveMetrics(Loss(40, kNaN, 9.0));  // and fires again
    ASSERT_EQ(ts.size(), 1u);
    EXPECT_EQ(ts[0].action, Action::kCancel);
    EXPECT_EQ(ts[0].alert.since, t0 + 90);
    ASSERT_TRUE(store->Record(ts).ok());
  }  // the monitor stops

  clock_.Advance(seconds(120));
  auto store = AlertStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  AlertEngine engine(clock_, TestRules());
  engine.Restore(*loaded);
  auto list = engine.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].key.ToString(), "cluster/loss-nan/job-7");
  EXPECT_EQ(list[0].state, AlertState::kFiring);
  EXPECT_EQ(list[0].since, t0 + 90);
  EXPECT_EQ(list[0].active_since, t0 + 90);
  EXPECT_EQ(list[0].why, "loss is NaN at step 40");
  EXPECT_TRUE(std::isnan(list[0].value));
  EXPECT_EQ(list[0].action, Action::kCancel);
  EXPECT_EQ(list[0].severity, "warning");
  EXPECT_EQ(list[0].labels.at("team"), "vision");
  EXPECT_EQ(list[1].key.rule, "big-grad");
  EXPECT_EQ(list[1].state, AlertState::kPending);
  EXPECT_EQ(list[1].since, t0 + 30);
  EXPECT_EQ(list[1].value, 9.0);

  // Still NaN after the restart: no second firing, no second cancel.
  EXPECT_TRUE(engine.ObserveMetrics(Loss(50, kNaN, 9.0)).empty());
  // The pending alert kept its start: it fires 10 min after t0 + 30, across the restart.
  clock_.Advance(seconds(419));
  EXPECT_TRUE(engine.ObserveMetrics(Loss(60, kNaN, 9.0)).empty());
  clock_.Advance(seconds(1));
  auto ts = engine.ObserveMetrics(Loss(70, kNaN, 9.0));
  ASSERT_EQ(ts.size(), 1u);
  EXPECT_EQ(ts[0].alert.key.rule, "big-grad");
  EXPECT_EQ(ts[0].to, AlertState::kFiring);
  ASSERT_TRUE(store->Record(ts).ok());

  auto history = store->History("job-7", 100);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 5u);
  EXPECT_EQ(history->front().alert.key.rule, "big-grad");  // newest first
  EXPECT_EQ(history->back().to, AlertState::kFiring);
  EXPECT_EQ(history->back().alert.key.rule, "loss-nan");
  EXPECT_EQ(history->back().action, Action::kCancel);
  EXPECT_EQ(history->back().time, t0 + 30);
  EXPECT_TRUE(store->History("other-job", 100)->empty());
}

TEST_F(AlertStoreTest, ChangeToInactiveDeletesTheInstanceAndPruneDropsOldResolved) {
  auto store = AlertStore::Open(path_);
  ASSERT_TRUE(store.ok());
  AlertEngine engine(clock_, TestRules());
  ASSERT_TRUE(store->Record(engine.ObserveMetrics(Loss(1, 1.0, 9.0))).ok());  // big-grad pending
  ASSERT_EQ(store->Load()->size(), 1u);
  ASSERT_TRUE(store->Record(engine.ObserveMetrics(Loss(2, 1.0, 1.0))).ok());  // back to inactive
  EXPECT_TRUE(store->Load()->empty());

  ASSERT_TRUE(store->Record(engine.ObserveMetrics(Loss(3, std::numeric_limits<double>::infinity()))).ok());
  clock_.Advance(seconds(10));
  ASSERT_TRUE(store->Record(engine.ObserveMetrics(Loss(4, 1.0))).ok());  // loss-nan resolved
  ASSERT_EQ(store->Load()->size(), 1u);
  EXPECT_EQ(store->Load()->at(0).state, AlertState::kResolved);
  ASSERT_TRUE(store->PruneResolved(clock_.WallSeconds()).ok());  // resolved at this instant: kept
  ASSERT_EQ(store->Load()->size(), 1u);
  clock_.Advance(seconds(1));
  ASSERT_TRUE(store->PruneResolved(clock_.WallSeconds()).ok());
  EXPECT_TRUE(store->Load()->empty());
  EXPECT_EQ(store->History("", 100)->size(), 4u);  // events stay
}

TEST_F(AlertStoreTest, SharesTheFileWithAnotherSchemaOwner) {
  {
    auto db = sql::Db::Open(path_);
    ASSERT_TRUE(db.ok());
    // MetricsStore owns user_version in the monitor's file.
    ASSERT_TRUE(db->Exec("CREATE TABLE metrics(x); PRAGMA user_version=2;").ok());
  }
  ASSERT_TRUE(AlertStore::Open(path_).ok());
  ASSERT_TRUE(AlertStore::Open(path_).ok());  // idempotent
  auto db = sql::Db::Open(path_);
  ASSERT_TRUE(db.ok());
  auto v = db->QueryStrings("PRAGMA user_version");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->at(0), "2");
  auto comp = db->QueryStrings("SELECT version FROM schema_components WHERE component = 'alerts'");
  ASSERT_TRUE(comp.ok());
  EXPECT_EQ(comp->at(0), "1");
}

}  // namespace
}  // namespace gantry::monitor::alerts
