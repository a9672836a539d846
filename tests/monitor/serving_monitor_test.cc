// The monitor's side of serving (no sockets): serving reports through
// MonitorService into the HTTP read side (/api/deployments, /metrics), the
// alert rules on serving values, and drift windows of sampled requests
// against a stored profile (a shifted stream is flagged, an unshifted one is
// not).
#include <gtest/gtest.h>

#include <random>

#include "common/config.h"
#include "common/ingest_wire.h"
#include "drift/stored_profile.h"
#include "monitor/alert_wiring.h"
#include "monitor/alerts/engine.h"
#include "monitor/http_api.h"
#include "monitor/monitor_service.h"
#include "monitor/serving_drift.h"
#include "tests/monitor/test_support.h"

namespace gantry::monitor {
namespace {

ServingMetricsMessage Report(int64_t seq, uint64_t requests, uint64_t succeeded, double time) {
  ServingMetricsMessage m;
  m.deployment = "fashion-prod";
  m.model = "fashion";
  m.version = "3";
  m.time = time;
  m.seq = seq;
  m.requests = requests;
  m.succeeded = succeeded;
  if (requests > succeeded) m.errors_by_code[400] = requests - succeeded;
  m.latency_seconds = {{0.001, 0.01, 0.1}, {requests / 2, requests - requests / 2, 0, 0}, requests, 0.003 * requests};
  m.batch_size = {{1, 2, 4}, {0, 0, requests / 4, 0}, requests / 4, 4.0 * (requests / 4)};
  m.wrong_shape = requests - succeeded;
  m.out_of_range_requests = 2;
  m.accuracy = 0.75;
  m.window_outcomes = 8;
  m.per_class = {{1, 0.5, 1.0, 2}};
  return m;
}

http::HttpResponse Get(const http::Router& router, const std::string& path) {
  http::HttpRequest r;
  r.method = "GET";
  r.target = path;
  r.path = path;
  return router.Dispatch(r, "");
}

class ServingIngestTest : public ::testing::Test {
 protected:
  ServingIngestTest()
      : service_(ctx_, std::move(MetricsStore::Open(dir_.path() + "/monitor.db")).value(), clock_, MonitorOptions{}),
        api_(std::move(MetricsStore::Open(dir_.path() + "/monitor.db")).value(), nullptr) {
    service_.AddObserver(&api_);
    EXPECT_TRUE(api_.Install(router_).ok());
  }

  testing::TempDir dir_;
  ManualClock clock_;
  zmq::context_t ctx_;
  MonitorService service_;
  HttpApi api_;
  http::Router router_;
};

TEST_F(ServingIngestTest, ReportsShowOnApiDeploymentsAndMetrics) {
  const double now = 1.7e9;
  service_.OnIngestFrame(EncodeServingMetricsMessage(Report(1, 100, 90, now)));
  service_.OnIngestFrame(EncodeServingMetricsMessage(Report(2, 300, 280, now + 2)));
  MonitorStats stats = service_.Stats();
  EXPECT_EQ(stats.serving_reports, 2);
  EXPECT_EQ(stats.points_ingested, 0);  // not stored as job points
  EXPECT_EQ(stats.messages_dropped, 0);

  http::HttpResponse r = Get(router_, "/api/deployments");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  ASSERT_EQ(j["deployments"].size(), 1u);
  const json& d = j["deployments"][0];
  EXPECT_EQ(d["deployment"], "fashion-prod");
  EXPECT_EQ(d["version"], "3");
  EXPECT_EQ(d["requests"], 300);
  EXPECT_EQ(d["errors"], 20);
  EXPECT_DOUBLE_EQ(d["request_rate"].get<double>(), 100.0);  // 200 requests in 2 s
  EXPECT_DOUBLE_EQ(d["error_rate"].get<double>(), 5.0);      // 10 errors in 2 s
  EXPECT_DOUBLE_EQ(d["accuracy"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(d["latency_p50_seconds"].get<double>(), 0.001);
  EXPECT_EQ(d["input_anomalies"]["out_of_range"], 2);

  http::HttpResponse m = Get(router_, "/metrics");
  ASSERT_EQ(m.status, 200);
  for (const char* line : {
           "gantry_serving_requests_total{deployment=\"fashion-prod\",model=\"fashion\",version=\"3\",code=\"200\"} 280\n",
           "gantry_serving_requests_total{deployment=\"fashion-prod\",model=\"fashion\",version=\"3\",code=\"400\"} 20\n",
           "gantry_serving_request_duration_seconds_count{deployment=\"fashion-prod\",model=\"fashion\",version=\"3\"} 300\n",
           "gantry_serving_input_anomalies_total{deployment=\"fashion-prod\",model=\"fashion\",version=\"3\",kind=\"wrong_shape\"} 20\n",
           "gantry_serving_accuracy{deployment=\"fashion-prod\",model=\"fashion\",version=\"3\"} 0.75\n",
           "gantry_serving_recall{deployment=\"fashion-prod\",model=\"fashion\",version=\"3\",class=\"1\"} 1\n",
       }) {
    EXPECT_NE(m.body.find(line), std::string::npos) << "missing: " << line << "\n" << m.body;
  }
}

TEST_F(ServingIngestTest, MalformedServingFramesAreDroppedAndCounted) {
  ServingMetricsMessage bad = Report(1, 10, 20, 1.7e9);  // succeeded > requests
  service_.OnIngestFrame(EncodeServingMetricsMessage(bad));
  ServingSamplesMessage s{"d", "m", "1", 1.7e9, 3, {1, 2}, {0}};  // 1 row of 3 needs 3 values
  service_.OnIngestFrame(EncodeServingSamplesMessage(s));
  EXPECT_EQ(service_.Stats().messages_dropped, 2);
  EXPECT_EQ(json::parse(Get(router_, "/api/deployments").body)["deployments"].size(), 0u);
}

TEST(ServingAlerts, ThresholdRuleOnLiveAccuracyFiresAndResolves) {
  ManualClock clock;
  auto j = YamlToJson(
      "alerts:\n  - {name: live-accuracy, kind: threshold, metric: serving_accuracy, op: '<', value: 0.8}\n"
      "  - {name: no-progress, kind: no_progress, after: 1m}\n");
  ASSERT_TRUE(j.ok());
  auto rules = alerts::ParseRules((*j)["alerts"], "alerts", alerts::RuleScope::kCluster, "test");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  alerts::AlertEngine engine(clock, *rules);
  auto fire = engine.ObserveServing(ServingAlertSample(Report(1, 100, 90, 1.7e9)));  // accuracy 0.75
  ASSERT_EQ(fire.size(), 1u);
  EXPECT_EQ(fire[0].alert.key.rule, "live-accuracy");
  EXPECT_EQ(fire[0].alert.key.job, "fashion-prod/fashion");
  EXPECT_EQ(fire[0].alert.state, alerts::AlertState::kFiring);
  ServingMetricsMessage better = Report(2, 200, 190, 1.7e9 + 1);
  better.accuracy = 0.9;
  auto resolve = engine.ObserveServing(ServingAlertSample(better));
  ASSERT_EQ(resolve.size(), 1u);
  EXPECT_EQ(resolve[0].alert.state, alerts::AlertState::kResolved);
  // A deployment is not a job: no no-progress alert however long it is quiet.
  clock.Advance(std::chrono::minutes(10));
  EXPECT_TRUE(engine.Tick().empty());

  // The values a rule may name.
  alerts::MetricSample s = ServingAlertSample(Report(3, 100, 90, 1.7e9));
  std::map<std::string, double> v(s.values.begin(), s.values.end());
  EXPECT_DOUBLE_EQ(v.at("serving_error_ratio"), 0.1);
  EXPECT_DOUBLE_EQ(v.at("serving_precision_1"), 0.5);
  EXPECT_EQ(v.count("serving_latency_p99_seconds"), 1u);
}

// Drift windows: a profile of 4 Gaussian features (and labels 0..2)
// calibrated on windows of 200 rows; the stream arrives as samples.
class ServingDriftTest : public ::testing::Test {
 protected:
  static constexpr size_t kCols = 4;
  static constexpr int64_t kWindow = 200;

  void SetUp() override {
    std::vector<float> ref = Rows(4000, 0.0, 1);
    std::vector<int64_t> labels(4000);
    for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i % 3);
    const std::vector<drift::CategoricalColumn> cat{{"label", labels}};
    drift::ReferenceOptions o;
    o.calibration.window_rows = kWindow;
    o.calibration.windows = 40;
    o.calibration.check_windows = 40;
    auto p = drift::BuildReferenceProfile(drift::MatrixView::Of(std::span<const float>(ref), 4000, kCols), {}, cat, o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    profile_ = *p;
  }

  static std::vector<float> Rows(size_t n, double shift, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g(0, 1);
    std::vector<float> out(n * kCols);
    for (float& v : out) v = g(rng) + static_cast<float>(shift);
    return out;
  }

  std::unique_ptr<ServingDrift> Make(std::vector<DriftRecord>* results) {
    ServingDriftOptions o;
    o.window_rows = kWindow;
    auto d = ServingDrift::Create(
        o, dir_.path() + "/drift.db",
        [this](const std::string& model, const std::string& version) -> Result<drift::ReferenceProfile> {
          ++fetches_;
          if (model == "fashion" && version == "3") return profile_;
          return Status::NotFound(model + "@v" + version + " has no drift profile");
        },
        clock_, [results](const DriftRecord& r) { results->push_back(r); });
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::move(d).value() : nullptr;
  }

  // `rows` rows as samples of `version`, in messages of 50 rows.
  static void Feed(ServingDrift& d, const std::string& version, const std::vector<float>& rows, int64_t cls) {
    const size_t n = rows.size() / kCols;
    for (size_t first = 0; first < n; first += 50) {
      ServingSamplesMessage s;
      s.deployment = "fashion-prod";
      s.model = "fashion";
      s.version = version;
      s.time = 1.7e9;
      s.row_size = kCols;
      s.inputs.assign(rows.begin() + static_cast<std::ptrdiff_t>(first * kCols),
                      rows.begin() + static_cast<std::ptrdiff_t>(std::min(n, first + 50) * kCols));
      s.predictions.assign(std::min(n, first + 50) - first, cls);
      IngestMessage m;
      m.type = kServingSamplesType;
      m.record = std::move(s);
      d.OnMessage(m);
    }
  }

  testing::TempDir dir_;
  ManualClock clock_;
  drift::ReferenceProfile profile_;
  int fetches_ = 0;
};

TEST_F(ServingDriftTest, AShiftedStreamIsFlaggedAnUnshiftedOneIsNot) {
  std::vector<DriftRecord> results;
  auto d = Make(&results);
  ASSERT_NE(d, nullptr);
  Feed(*d, "3", Rows(kWindow, 0.0, 99), 0);   // one clean window
  Feed(*d, "3", Rows(kWindow - 1, 1.0, 98), 1);  // shifted, one row short of a window
  ASSERT_TRUE(d->ProcessQueued().ok());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].dataset_drift) << results[0].share << " " << results[0].features_json;
  EXPECT_EQ(results[0].dataset, "serving:fashion-prod/fashion");
  EXPECT_EQ(results[0].version, "3");
  EXPECT_EQ(results[0].rows, kWindow);
  EXPECT_EQ(results[0].tested, static_cast<int64_t>(kCols));
  EXPECT_GT(results[0].share_threshold, 0);

  Feed(*d, "3", Rows(1, 1.0, 97), 1);  // completes the shifted window
  ASSERT_TRUE(d->ProcessQueued().ok());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[1].dataset_drift);
  EXPECT_EQ(results[1].drifted, static_cast<int64_t>(kCols));
  EXPECT_EQ(results[1].file, "v3 window 2");
  // Every prediction is class 1 while the training labels are 0..2 evenly.
  json features = json::parse(results[1].features_json);
  bool seen = false;
  for (const json& f : features) {
    if (f["name"] == "predicted_class") {
      seen = true;
      EXPECT_TRUE(f["drifted"].get<bool>());
      EXPECT_LT(f["chi2_p_value"].get<double>(), 1e-6);
    }
  }
  EXPECT_TRUE(seen) << results[1].features_json;
  EXPECT_EQ(fetches_, 1);  // the profile is fetched once per version

  // Stored: a restarted monitor lists them, and numbers windows on.
  auto again = Make(&results);
  ASSERT_EQ(again->Recent().size(), 2u);
  EXPECT_EQ(again->Recent()[0].file, "v3 window 2");
  EXPECT_EQ(again->Recent()[0].deployment, "fashion-prod");
  Feed(*again, "3", Rows(kWindow, 0.0, 96), 0);
  ASSERT_TRUE(again->ProcessQueued().ok());
  EXPECT_EQ(again->Recent()[0].file, "v3 window 3");
}

TEST_F(ServingDriftTest, UnshiftedWindowsRarelyAlarm) {
  std::vector<DriftRecord> results;
  auto d = Make(&results);
  Feed(*d, "3", Rows(20 * kWindow, 0.0, 1234), 0);
  ASSERT_TRUE(d->ProcessQueued().ok());
  ASSERT_EQ(results.size(), 20u);
  int alarms = 0;
  for (const auto& r : results) alarms += r.dataset_drift ? 1 : 0;
  EXPECT_LE(alarms, 1);
}

// A version saved with its evaluation set's predictions is judged against
// them: a model that predicts mostly class 1 on its own test set is not
// drifting when it does so in serving, though the labels are even.
TEST_F(ServingDriftTest, PredictionsAreComparedWithTheVersionsOwnEvaluation) {
  profile_.predictions = drift::CategoricalProfile{"predicted_class", {{0, 5}, {1, 990}, {2, 5}}};
  std::vector<DriftRecord> results;
  auto d = Make(&results);
  ASSERT_NE(d, nullptr);
  Feed(*d, "3", Rows(kWindow, 0.0, 77), 1);
  ASSERT_TRUE(d->ProcessQueued().ok());
  ASSERT_EQ(results.size(), 1u);
  bool seen = false;
  for (const json& f : json::parse(results[0].features_json)) {
    if (f["name"] != "predicted_class") continue;
    seen = true;
    EXPECT_EQ(f["reference"], "eval_predictions");
    EXPECT_FALSE(f["drifted"].get<bool>()) << f.dump();
  }
  EXPECT_TRUE(seen) << results[0].features_json;

  // The same window against predictions spread over the classes: drifted.
  profile_.predictions = drift::CategoricalProfile{"predicted_class", {{0, 333}, {1, 334}, {2, 333}}};
  std::vector<DriftRecord> spread;
  testing::TempDir other;
  ServingDriftOptions o;
  o.window_rows = kWindow;
  auto e = ServingDrift::Create(
      o, other.path() + "/drift.db",
      [this](const std::string&, const std::string&) -> Result<drift::ReferenceProfile> { return profile_; }, clock_,
      [&spread](const DriftRecord& r) { spread.push_back(r); });
  ASSERT_TRUE(e.ok());
  Feed(**e, "3", Rows(kWindow, 0.0, 77), 1);
  ASSERT_TRUE((*e)->ProcessQueued().ok());
  ASSERT_EQ(spread.size(), 1u);
  for (const json& f : json::parse(spread[0].features_json)) {
    if (f["name"] == "predicted_class") {
      EXPECT_TRUE(f["drifted"].get<bool>()) << f.dump();
    }
  }
}

TEST_F(ServingDriftTest, VersionsWithoutAProfileAreSkippedAndTheQueueIsBounded) {
  std::vector<DriftRecord> results;
  ServingDriftOptions o;
  o.window_rows = kWindow;
  o.max_queued_rows = 300;
  auto d = ServingDrift::Create(
      o, dir_.path() + "/drift.db",
      [](const std::string&, const std::string&) -> Result<drift::ReferenceProfile> {
        return Status::NotFound("no profile");
      },
      clock_, [&results](const DriftRecord& r) { results.push_back(r); });
  ASSERT_TRUE(d.ok());
  Feed(**d, "9", Rows(400, 0.0, 5), 0);  // 300 queued, 100 dropped
  ServingDriftStats s = (*d)->stats();
  EXPECT_EQ(s.rows_received, 400u);
  EXPECT_EQ(s.rows_dropped, 100u);
  ASSERT_TRUE((*d)->ProcessQueued().ok());
  EXPECT_TRUE(results.empty());
  EXPECT_EQ((*d)->stats().windows_skipped, 1u);
}

}  // namespace
}  // namespace gantry::monitor
