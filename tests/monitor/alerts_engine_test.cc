// The alert engine on a ManualClock: each rule kind goes inactive -> pending
// -> firing -> resolved, with since-times and why strings.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/clock.h"
#include "common/config.h"
#include "monitor/alerts/engine.h"

namespace gantry::monitor::alerts {
namespace {

using std::chrono::seconds;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<Rule> Rules(const std::string& yaml) {
  auto j = YamlToJson(yaml);
  EXPECT_TRUE(j.ok());
  auto r = ParseRules((*j)["alerts"], "alerts", RuleScope::kCluster, "alerts file");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<Rule>{};
}

MetricSample Sample(const std::string& job, int64_t step, std::vector<std::pair<std::string, double>> values,
                    int64_t rank = 0, int64_t attempt = 1) {
  return MetricSample{job, attempt, rank, step, std::move(values)};
}

// The single transition in `ts`, checked to go from -> to (a copy: `ts` is
// usually a temporary).
Transition Only(const std::vector<Transition>& ts, AlertState from, AlertState to) {
  EXPECT_EQ(ts.size(), 1u);
  if (ts.size() != 1) return Transition{};
  EXPECT_EQ(StateName(ts[0].from), std::string(StateName(from)));
  EXPECT_EQ(StateName(ts[0].to), std::string(StateName(to)));
  return ts[0];
}

class AlertEngineTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  double t0_ = clock_.WallSeconds();
};

TEST_F(AlertEngineTest, ThresholdGoesPendingFiringResolvedAndPendingAgain) {
  AlertEngine engine(clock_, Rules("alerts:\n  - {name: high-loss, kind: threshold, metric: loss, op: '>', "
                                   "value: 2, for: 60s, severity: critical, labels: {team: vision}}\n"));
  EXPECT_TRUE(engine.ObserveMetrics(Sample("j1", 10, {{"loss", 1.5}})).empty());
  EXPECT_TRUE(engine.List().empty());

  clock_.Advance(seconds(5));
  Transition p = Only(engine.ObserveMetrics(Sample("j1", 20, {{"loss", 3.0}})), AlertState::kInactive,
                             AlertState::kPending);
  EXPECT_EQ(p.alert.since, t0_ + 5);
  EXPECT_EQ(p.alert.why, "loss is 3 > 2, at step 20");
  EXPECT_EQ(p.alert.severity, "critical");
  EXPECT_EQ(p.alert.labels.at("team"), "vision");
  EXPECT_EQ(p.alert.key.rank, -1);

  clock_.Advance(seconds(30));  // held 30 s of 60
  EXPECT_TRUE(engine.ObserveMetrics(Sample("j1", 30, {{"loss", 3.5}})).empty());
  ASSERT_EQ(engine.List().size(), 1u);
  EXPECT_EQ(engine.List()[0].state, AlertState::kPending);
  EXPECT_EQ(engine.List()[0].since, t0_ + 5);

  clock_.Advance(seconds(30));  // 60 s: fires
  Transition f = Only(engine.ObserveMetrics(Sample("j1", 40, {{"loss", 4.0}})), AlertState::kPending,
                             AlertState::kFiring);
  EXPECT_EQ(f.alert.since, t0_ + 65);
  EXPECT_EQ(f.alert.active_since, t0_ + 5);
  EXPECT_EQ(f.action, Action::kNone);

  clock_.Advance(seconds(10));
  EXPECT_TRUE(engine.ObserveMetrics(Sample("j1", 50, {{"loss", 5.0}})).empty());  // still firing
  Transition r = Only(engine.ObserveMetrics(Sample("j1", 60, {{"loss", 1.0}})), AlertState::kFiring,
                             AlertState::kResolved);
  EXPECT_EQ(r.alert.why, "loss is 1, not > 2, at step 60");
  EXPECT_EQ(engine.List().at(0).state, AlertState::kResolved);

  // Holding again after resolution goes through pending, not straight to firing.
  clock_.Advance(seconds(1));
  Only(engine.ObserveMetrics(Sample("j1", 70, {{"loss", 9.0}})), AlertState::kResolved, AlertState::kPending);
  // A pending alert whose condition stops goes back to inactive and leaves the list.
  Only(engine.ObserveMetrics(Sample("j1", 80, {{"loss", 0.5}})), AlertState::kPending, AlertState::kInactive);
  EXPECT_TRUE(engine.List().empty());
}

TEST_F(AlertEngineTest, PendingFiresOnTickWithoutNewData) {
  AlertEngine engine(clock_, Rules("alerts:\n  - {name: acc, kind: threshold, metric: accuracy, op: '<', "
                                   "value: 0.5, for: 2m}\n"));
  Only(engine.ObserveMetrics(Sample("j1", 1, {{"accuracy", 0.1}})), AlertState::kInactive, AlertState::kPending);
  clock_.Advance(seconds(119));
  EXPECT_TRUE(engine.Tick().empty());
  clock_.Advance(seconds(1));
  Only(engine.Tick(), AlertState::kPending, AlertState::kFiring);
}

TEST_F(AlertEngineTest, NanLossWithActionCancelReportsTheActionOnce) {
  AlertEngine engine(clock_, Rules("alerts:\n  - {name: loss-nan, kind: nonfinite, action: cancel, "
                                   "severity: critical}\n"));
  EXPECT_TRUE(engine.ObserveMetrics(Sample("j1", 110, {{"loss", 0.7}})).empty());
  clock_.Advance(seconds(1));
  // for: 0 fires at once, with the action.
  Transition f = Only(engine.ObserveMetrics(Sample("j1", 120, {{"loss", kNaN}})), AlertState::kInactive,
                             AlertState::kFiring);
  EXPECT_EQ(f.action, Action::kCancel);
  EXPECT_EQ(f.alert.why, "loss is NaN at step 120");
  EXPECT_TRUE(std::isnan(f.alert.value));
  int cancels = 1;
  for (int step = 130; step < 200; step += 10) {
    clock_.Advance(seconds(1));
    for (const auto& t : engine.ObserveMetrics(Sample("j1", step, {{"loss", kNaN}}))) {
      cancels += t.action == Action::kCancel;
    }
    for (const auto& t : engine.Tick()) cancels += t.action == Action::kCancel;
  }
  EXPECT_EQ(cancels, 1);
  // Inf counts too; the job's end resolves the alert, without another action.
  engine.ObserveMetrics(Sample("j1", 200, {{"loss", std::numeric_limits<double>::infinity()}}));
  EXPECT_EQ(engine.List().at(0).why, "loss is +Inf at step 200");
  Transition r = Only(engine.ObserveJobState("j1", "CANCELLED"), AlertState::kFiring, AlertState::kResolved);
  EXPECT_EQ(r.action, Action::kNone);
  EXPECT_EQ(r.alert.why, "the job ended (CANCELLED)");
}

TEST_F(AlertEngineTest, NoProgressAfterT) {
  AlertEngine engine(clock_, Rules("alerts:\n  - {name: stalled, kind: no_progress, after: 10m, for: 1m}\n"));
  EXPECT_TRUE(engine.ObserveMetrics(Sample("j1", 100, {{"loss", 1}})).empty());
  clock_.Advance(seconds(300));
  EXPECT_TRUE(engine.ObserveMetrics(Sample("j1", 100, {{"loss", 1}})).empty());  // same step: no progress
  clock_.Advance(seconds(300));
  Transition p = Only(engine.Tick(), AlertState::kInactive, AlertState::kPending);
  EXPECT_EQ(p.alert.why, "no new step for 10m (last step 100)");
  clock_.Advance(seconds(60));
  Only(engine.Tick(), AlertState::kPending, AlertState::kFiring);
  clock_.Advance(seconds(5));
  Transition r = Only(engine.ObserveMetrics(Sample("j1", 101, {{"loss", 1}})), AlertState::kFiring,
                             AlertState::kResolved);
  EXPECT_EQ(r.alert.why, "step 101 0s ago");
  // A job that is not running (queued, restarting) does not count as stalled.
  EXPECT_TRUE(engine.ObserveJobState("j1", "RESTARTING").empty());
  clock_.Advance(seconds(1800));
  EXPECT_TRUE(engine.Tick().empty());
  EXPECT_TRUE(engine.ObserveJobState("j1", "RUNNING").empty());  // restarts the clock
  clock_.Advance(seconds(599));
  EXPECT_TRUE(engine.Tick().empty());
  clock_.Advance(seconds(1));
  Only(engine.Tick(), AlertState::kResolved, AlertState::kPending);
}

TEST_F(AlertEngineTest, ThroughputDropAgainstTheJobsOwnMedian) {
  AlertEngine engine(clock_, Rules("alerts:\n  - {name: slow, kind: throughput_drop, drop_percent: 30, "
                                   "window: 10, min_samples: 5, for: 20s}\n"));
  // Too few samples to judge: even a collapse says nothing yet.
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(engine.ObserveMetrics(Sample("j1", i, {{"samples_per_sec", i == 3 ? 10.0 : 1420.0}})).empty());
  }
  for (int i = 4; i < 10; ++i) {
    clock_.Advance(seconds(10));
    EXPECT_TRUE(engine.ObserveMetrics(Sample("j1", i, {{"samples_per_sec", 1420.0 + 10 * (i % 3 - 1)}})).empty());
  }
  clock_.Advance(seconds(10));
  Transition p = Only(engine.ObserveMetrics(Sample("j1", 10, {{"samples_per_sec", 812}})),
                             AlertState::kInactive, AlertState::kPending);
  EXPECT_EQ(p.alert.why, "samples/s 812 is 43% below the job's median 1420 at step 10");
  clock_.Advance(seconds(20));
  Only(engine.ObserveMetrics(Sample("j1", 11, {{"samples_per_sec", 800}})), AlertState::kPending,
       AlertState::kFiring);
  clock_.Advance(seconds(10));
  Transition r = Only(engine.ObserveMetrics(Sample("j1", 12, {{"samples_per_sec", 1390}})),
                             AlertState::kFiring, AlertState::kResolved);
  EXPECT_EQ(r.alert.why.rfind("samples/s 1390 is ", 0), 0u) << r.alert.why;
  // Another job has its own median: 50 samples/s is normal there.
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(engine.ObserveMetrics(Sample("j2", i, {{"samples_per_sec", 50}})).empty());
  }
}

TEST_F(AlertEngineTest, StragglerRankAgainstTheOtherRanks) {
  AlertEngine engine(clock_, Rules("alerts:\n  - {name: straggler, kind: straggler, factor: 1.5, for: 30s}\n"));
  auto round = [&](int64_t step, double slow) {
    std::vector<Transition> all;
    for (int64_t rank = 0; rank < 4; ++rank) {
      auto ts = engine.ObserveMetrics(Sample("j1", step, {{"step_time", rank == 2 ? slow : 0.25}}, rank));
      all.insert(all.end(), ts.begin(), ts.end());
    }
    return all;
  };
  EXPECT_TRUE(round(1, 0.3).empty());
  clock_.Advance(seconds(10));
  Transition p = Only(round(2, 0.52), AlertState::kInactive, AlertState::kPending);
  EXPECT_EQ(p.alert.key.rank, 2);
  EXPECT_EQ(p.alert.why, "rank 2 step_time 0.52 is 2.08x the median 0.25 of the other ranks (limit 1.5x)");
  clock_.Advance(seconds(30));
  Transition f = Only(round(3, 0.6), AlertState::kPending, AlertState::kFiring);
  EXPECT_EQ(f.alert.key.rank, 2);
  clock_.Advance(seconds(10));
  Only(round(4, 0.26), AlertState::kFiring, AlertState::kResolved);
  ASSERT_EQ(engine.List().size(), 1u);
  EXPECT_EQ(engine.List()[0].key.ToString(), "cluster/straggler/j1/rank 2");
}

TEST_F(AlertEngineTest, DriftShareOrTheDetectorsVerdict) {
  AlertEngine engine(clock_, Rules("alerts:\n  - {name: drift, kind: drift, share: 0.2, for: 5m}\n"
                                   "  - {name: drift-verdict, kind: drift}\n"));
  DriftSample calm{"fashion-mnist", 0.01, 8, 784, false, 0.05};
  DriftSample drifted{"fashion-mnist", 0.43, 337, 784, true, 0.05};
  EXPECT_TRUE(engine.ObserveDrift(calm).empty());
  clock_.Advance(seconds(60));
  auto ts = engine.ObserveDrift(drifted);
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[0].alert.key.rule, "drift");
  EXPECT_EQ(ts[0].to, AlertState::kPending);
  EXPECT_EQ(ts[0].alert.why, "337 of 784 features drifted (43%, limit 20%)");
  EXPECT_EQ(ts[1].alert.key.rule, "drift-verdict");  // for: 0 and the detector says drift
  EXPECT_EQ(ts[1].to, AlertState::kFiring);
  EXPECT_EQ(ts[1].alert.why, "337 of 784 features drifted (43%, limit 5%)");
  clock_.Advance(seconds(300));
  Only(engine.ObserveDrift(drifted), AlertState::kPending, AlertState::kFiring);
  clock_.Advance(seconds(60));
  ts = engine.ObserveDrift(calm);
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[0].to, AlertState::kResolved);
  EXPECT_EQ(ts[1].to, AlertState::kResolved);
}

TEST_F(AlertEngineTest, JobRulesApplyToTheirJobOnlyAndServingSeriesUseThreshold) {
  AlertEngine engine(clock_, {});
  auto j = YamlToJson("alerts:\n  - {name: slow-requests, kind: threshold, metric: latency_p99_seconds, "
                      "value: 0.2, per_rank: true}\n");
  auto rules = ParseRules((*j)["alerts"], "alerts");
  ASSERT_TRUE(rules.ok());
  engine.SetJobRules("deploy/fmnist", *rules);
  EXPECT_TRUE(engine.ObserveMetrics(Sample("other", 1, {{"latency_p99_seconds", 9}})).empty());
  Transition f = Only(engine.ObserveMetrics(Sample("deploy/fmnist", 1, {{"latency_p99_seconds", 0.35}}, 3)),
                             AlertState::kInactive, AlertState::kFiring);
  EXPECT_EQ(f.alert.key.scope, RuleScope::kJob);
  EXPECT_EQ(f.alert.key.rank, 3);
  EXPECT_EQ(f.alert.why, "latency_p99_seconds is 0.35 > 0.2, at step 1");
}

TEST_F(AlertEngineTest, ListOrdersFiringFirstAndForgetsOldResolved) {
  AlertEngine::Options options;
  options.keep_resolved_seconds = 600;
  AlertEngine engine(clock_,
                     Rules("alerts:\n  - {name: hi, kind: threshold, metric: loss, value: 2}\n"
                           "  - {name: pend, kind: threshold, metric: loss, value: 1, for: 1h}\n"),
                     options);
  engine.ObserveMetrics(Sample("a", 1, {{"loss", 3}}));
  engine.ObserveMetrics(Sample("a", 2, {{"loss", 1.5}}));  // hi resolves, pend stays pending
  clock_.Advance(seconds(1));
  engine.ObserveMetrics(Sample("b", 1, {{"loss", 3}}));
  auto list = engine.List();
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0].key.ToString(), "cluster/hi/b");
  EXPECT_EQ(list[0].state, AlertState::kFiring);
  EXPECT_EQ(list[1].state, AlertState::kPending);
  EXPECT_EQ(list[2].state, AlertState::kPending);
  EXPECT_EQ(list[3].key.ToString(), "cluster/hi/a");
  EXPECT_EQ(list[3].state, AlertState::kResolved);
  clock_.Advance(seconds(600));
  engine.Tick();
  EXPECT_EQ(engine.List().size(), 3u);
}

TEST_F(AlertEngineTest, RestoredAlertOfARemovedRuleResolvesOnTick) {
  AlertInstance old;
  old.key = AlertKey{RuleScope::kCluster, "renamed-rule", "j1", -1};
  old.kind = RuleKind::kThreshold;
  old.state = AlertState::kFiring;
  old.since = t0_ - 100;
  old.condition = true;
  AlertEngine engine(clock_, Rules("alerts:\n  - {name: other, kind: nonfinite}\n"));
  engine.Restore({old});
  ASSERT_EQ(engine.List().size(), 1u);
  Transition r = Only(engine.Tick(), AlertState::kFiring, AlertState::kResolved);
  EXPECT_EQ(r.alert.why, "the rule was removed from the configuration");
  EXPECT_TRUE(engine.Tick().empty());
}

TEST_F(AlertEngineTest, LateSamplesOfAnEarlierAttemptAreIgnored) {
  AlertEngine engine(clock_, Rules("alerts:\n  - {name: loss-nan, kind: nonfinite}\n"));
  EXPECT_TRUE(engine.ObserveMetrics(Sample("j1", 50, {{"loss", 0.4}}, 0, /*attempt=*/2)).empty());
  EXPECT_TRUE(engine.ObserveMetrics(Sample("j1", 40, {{"loss", kNaN}}, 0, /*attempt=*/1)).empty());
  EXPECT_EQ(engine.ObserveMetrics(Sample("j1", 60, {{"loss", kNaN}}, 0, /*attempt=*/2)).size(), 1u);
}

}  // namespace
}  // namespace gantry::monitor::alerts
