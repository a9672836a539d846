// Prometheus text format: the writer's escaping and validation, the
// snapshot page checked by `promtool check metrics`, and a real Prometheus
// scraping it from the HTTP server (Debian `prometheus`; skipped without it).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/process.h"
#include "monitor/http/metrics_route.h"
#include "common/http/server.h"
#include "monitor/prometheus/snapshot.h"
#include "tests/monitor/http_test_client.h"
#include "tests/support/test_support.h"

namespace gantry::prometheus {
namespace {

using namespace std::chrono_literals;
using gantry::testing::TempDir;

bool OnPath(const std::string& program) {
  return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0;
}

// Runs a shell command, returning its exit code and merged output.
std::pair<int, std::string> Shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, ""};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

MetricsSnapshot TrickySnapshot() {
  MetricsSnapshot s;
  for (const char* state : {"queued", "scheduled", "running", "succeeded", "failed", "cancelled", "restarting",
                            "preempted"}) {
    s.jobs_by_state.emplace_back(state, std::string(state) == "running" ? 2 : 0);
  }
  s.queue_depth = 7;
  RunningJobMetrics a;
  a.job_id = "j-1 \"quoted\" back\\slash\nnewline";
  a.attempt = 2;
  a.step = 1200;
  a.loss = 0.3125;
  a.accuracy = 0.875;
  a.samples_per_second = 5321.5;
  a.ranks = {{0, 0.051}, {1, 0.049}, {2, 0.4}};
  RunningJobMetrics b;
  b.job_id = "j-2 ünïcødé";
  b.attempt = 1;
  b.step = 3;
  b.loss = std::nan("");
  b.samples_per_second = std::numeric_limits<double>::infinity();
  s.running_jobs = {a, b};
  s.checkpoints_saved = 12;
  s.checkpoints_failed = 1;
  s.ingest.points = 123456789;
  s.ingest.events = 40;
  s.ingest.duplicates = 17;
  s.ingest.dropped = 2;
  s.ingest.batch_seconds = HistogramValue{{{0.001, 5}, {0.01, 90}, {0.1, 99}}, 0.75, 100};
  s.alerts = {{"loss_nan", "firing", 1}, {"loss_nan", "inactive", 0}, {"slow \"rank\"", "pending", 2}};
  DatasetDrift d;
  d.dataset = "/data/new shards\\2026";
  d.share_drifted = 0.42;
  d.drifted = true;
  d.checked_at = 1.7e9;
  d.features = {{"pixel_12", "ks", 0.31, 1e-12}, {"label", "chi2", 88.5, 0.0}, {"pixel_3", "psi", -0.0, {}}};
  s.drift = {d};
  // A deployed model (serving families), with a label value needing escapes.
  ServingModelMetrics m;
  m.deployment = "fashion \"prod\"";
  m.model = "fashion";
  m.version = "3";
  m.requests_by_code = {{"200", 90}, {"400", 7}, {"503", 3}};
  m.latency_seconds = HistogramValue{{{0.001, 40}, {0.01, 95}, {0.1, 100}}, 0.42, 100};
  m.batch_size = HistogramValue{{{1, 10}, {2, 30}, {4, 60}}, 150, 60};
  m.input_anomalies = {{"non_finite", 2}, {"wrong_shape", 5}, {"wrong_datatype", 0}, {"out_of_range", 11}};
  m.out_of_range_values = 40;
  m.accuracy = 0.8125;
  m.feedback_window = 16;
  m.feedback_labels = 16;
  m.per_class = {{0, 0.75, 1.0}, {7, std::nullopt, 0.5}};
  m.samples_sent = 9;
  m.samples_dropped = 1;
  m.last_report = 1.7e9;
  s.serving = {m};
  return s;
}

TEST(TextWriterTest, EscapesFormatsAndValidates) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(7), "7");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1e30), "1e+30");
  EXPECT_TRUE(ValidMetricName("gantry:job_loss"));
  EXPECT_FALSE(ValidMetricName("9lives"));
  EXPECT_FALSE(ValidMetricName("bad-name"));
  EXPECT_FALSE(ValidMetricName(""));
  EXPECT_TRUE(ValidLabelName("job"));
  EXPECT_FALSE(ValidLabelName("__name__"));
  EXPECT_FALSE(ValidLabelName("a:b"));

  TextWriter w;
  EXPECT_FALSE(w.BeginFamily("gantry_things", MetricType::kCounter, "no _total").ok());
  EXPECT_FALSE(w.BeginFamily("gantry_level_total", MetricType::kGauge, "gauge named like a counter").ok());
  EXPECT_FALSE(w.Add({}, 1).ok());  // no family
  ASSERT_TRUE(w.BeginFamily("gantry_x_total", MetricType::kCounter, "Help with \\ and\nnewline.").ok());
  EXPECT_FALSE(w.BeginFamily("gantry_x_total", MetricType::kCounter, "again").ok());
  EXPECT_FALSE(w.Add({{"bad-label", "v"}}, 1).ok());
  EXPECT_FALSE(w.Add({{"a", "1"}, {"a", "2"}}, 1).ok());
  ASSERT_TRUE(w.Add({{"job", "a\"b"}}, 3).ok());
  ASSERT_TRUE(w.BeginFamily("gantry_lat_seconds", MetricType::kHistogram, "Latency.").ok());
  EXPECT_FALSE(w.Add({}, 1).ok());
  EXPECT_FALSE(w.AddHistogram({{"le", "1"}}, {}).ok());
  EXPECT_FALSE(w.AddHistogram({}, HistogramValue{{{0.5, 3}, {0.25, 4}}, 1, 4}).ok());  // bounds not increasing
  EXPECT_FALSE(w.AddHistogram({}, HistogramValue{{{0.5, 5}}, 1, 4}).ok());              // bucket > count
  ASSERT_TRUE(w.AddHistogram({{"op", "w"}}, HistogramValue{{{0.5, 3}, {1, 4}}, 1.25, 5}).ok());
  EXPECT_EQ(w.text(),
            "# HELP gantry_x_total Help with \\\\ and\\nnewline.\n"
            "# TYPE gantry_x_total counter\n"
            "gantry_x_total{job=\"a\\\"b\"} 3\n"
            "# HELP gantry_lat_seconds Latency.\n"
            "# TYPE gantry_lat_seconds histogram\n"
            "gantry_lat_seconds_bucket{op=\"w\",le=\"0.5\"} 3\n"
            "gantry_lat_seconds_bucket{op=\"w\",le=\"1\"} 4\n"
            "gantry_lat_seconds_bucket{op=\"w\",le=\"+Inf\"} 5\n"
            "gantry_lat_seconds_sum{op=\"w\"} 1.25\n"
            "gantry_lat_seconds_count{op=\"w\"} 5\n");
}

TEST(SnapshotTest, RendersEveryFamily) {
  auto page = RenderPrometheus(TrickySnapshot());
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  for (const char* line : {
           "gantry_jobs{state=\"running\"} 2\n",
           "gantry_queue_depth 7\n",
           "gantry_job_loss{job=\"j-1 \\\"quoted\\\" back\\\\slash\\nnewline\",attempt=\"2\"} 0.3125\n",
           "gantry_job_loss{job=\"j-2 ünïcødé\",attempt=\"1\"} NaN\n",
           "gantry_job_samples_per_second{job=\"j-2 ünïcødé\",attempt=\"1\"} +Inf\n",
           "gantry_job_step{job=\"j-2 ünïcødé\",attempt=\"1\"} 3\n",
           "gantry_rank_step_seconds{job=\"j-1 \\\"quoted\\\" back\\\\slash\\nnewline\",rank=\"2\"} 0.4\n",
           "gantry_checkpoints_saved_total 12\n",
           "gantry_checkpoints_failed_total 1\n",
           "gantry_ingest_points_total 123456789\n",
           "gantry_ingest_dropped_total 2\n",
           "gantry_ingest_batch_seconds_bucket{le=\"+Inf\"} 100\n",
           "gantry_alerts{rule=\"slow \\\"rank\\\"\",state=\"pending\"} 2\n",
           "gantry_drift_share{dataset=\"/data/new shards\\\\2026\"} 0.42\n",
           "gantry_drift_detected{dataset=\"/data/new shards\\\\2026\"} 1\n",
           "gantry_drift_feature_statistic{dataset=\"/data/new shards\\\\2026\",feature=\"pixel_12\",statistic=\"ks\"} 0.31\n",
           "gantry_drift_feature_p_value{dataset=\"/data/new shards\\\\2026\",feature=\"pixel_12\",statistic=\"ks\"} 1e-12\n",
           "# TYPE gantry_serving_requests_total counter\n",
           "gantry_serving_requests_total{deployment=\"fashion \\\"prod\\\"\",model=\"fashion\",version=\"3\",code=\"200\"} 90\n",
           "gantry_serving_requests_total{deployment=\"fashion \\\"prod\\\"\",model=\"fashion\",version=\"3\",code=\"503\"} 3\n",
           "# TYPE gantry_serving_request_duration_seconds histogram\n",
           "gantry_serving_request_duration_seconds_bucket{deployment=\"fashion \\\"prod\\\"\",model=\"fashion\",version=\"3\",le=\"0.01\"} 95\n",
           "gantry_serving_request_duration_seconds_count{deployment=\"fashion \\\"prod\\\"\",model=\"fashion\",version=\"3\"} 100\n",
           "gantry_serving_batch_size_bucket{deployment=\"fashion \\\"prod\\\"\",model=\"fashion\",version=\"3\",le=\"4\"} 60\n",
           "gantry_serving_input_anomalies_total{deployment=\"fashion \\\"prod\\\"\",model=\"fashion\",version=\"3\",kind=\"out_of_range\"} 11\n",
           "gantry_serving_accuracy{deployment=\"fashion \\\"prod\\\"\",model=\"fashion\",version=\"3\"} 0.8125\n",
           "gantry_serving_precision{deployment=\"fashion \\\"prod\\\"\",model=\"fashion\",version=\"3\",class=\"0\"} 0.75\n",
           "gantry_serving_recall{deployment=\"fashion \\\"prod\\\"\",model=\"fashion\",version=\"3\",class=\"7\"} 0.5\n",
           "gantry_serving_samples_dropped_total{deployment=\"fashion \\\"prod\\\"\",model=\"fashion\",version=\"3\"} 1\n",
       }) {
    EXPECT_NE(page->find(line), std::string::npos) << "missing: " << line << "\n" << *page;
  }
  // No accuracy for the job that has none, no p-value where the test has none.
  EXPECT_EQ(page->find("gantry_job_accuracy{job=\"j-2"), std::string::npos);
  EXPECT_EQ(page->find("gantry_drift_feature_p_value{dataset=\"/data/new shards\\\\2026\",feature=\"pixel_3\""),
            std::string::npos);
  // No precision for a class never predicted in the window.
  EXPECT_EQ(page->find("gantry_serving_precision{deployment=\"fashion \\\"prod\\\"\",model=\"fashion\",version=\"3\",class=\"7\""),
            std::string::npos);
}

TEST(SnapshotTest, PromtoolCheckMetricsIsClean) {
  if (!OnPath("promtool")) GTEST_SKIP() << "promtool not installed (Debian package 'prometheus')";
  auto page = RenderPrometheus(TrickySnapshot());
  ASSERT_TRUE(page.ok());
  TempDir dir;
  std::string path = dir.path() + "/metrics.txt";
  std::ofstream(path) << *page;
  auto [rc, out] = Shell("promtool check metrics < " + path);
  EXPECT_EQ(rc, 0) << out << "\n" << *page;
  EXPECT_EQ(out, "") << *page;
  // And promtool does catch a bad page (the check is not vacuous).
  std::ofstream(dir.path() + "/bad.txt") << "# TYPE gantry_things counter\ngantry_things{a=\"b} 1\n";
  EXPECT_NE(Shell("promtool check metrics < " + dir.path() + "/bad.txt").first, 0);
}

TEST(MetricsRouteTest, AnswersThePageOr500) {
  auto ok = http::MetricsRoute([] { return Result<MetricsSnapshot>(TrickySnapshot()); })(http::HttpRequest{});
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(ok.body.find("gantry_queue_depth 7\n"), std::string::npos);
  auto bad = http::MetricsRoute([] { return Result<MetricsSnapshot>(Status::Unavailable("store closed")); })(
      http::HttpRequest{});
  EXPECT_EQ(bad.status, 500);
  EXPECT_NE(bad.body.find("store closed"), std::string::npos);
}

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

TEST(PrometheusScrapeTest, RealPrometheusScrapesTheMetricsPage) {
  if (!OnPath("prometheus")) GTEST_SKIP() << "prometheus not installed (Debian package 'prometheus')";
  auto router = std::make_shared<http::Router>();
  ASSERT_TRUE(router->Add("GET", "/metrics", http::MetricsRoute([] {
    return Result<MetricsSnapshot>(TrickySnapshot());
  })).ok());
  http::HttpServerOptions options;
  options.port = 0;
  http::HttpServer server(options, router);
  ASSERT_TRUE(server.Start().ok());

  TempDir dir;
  std::string config = dir.path() + "/prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        << "scrape_configs:\n  - job_name: gantry\n    static_configs:\n"
                        << "      - targets: ['127.0.0.1:" << server.port() << "']\n";
  // A free port can be taken between the probe and prometheus' bind; retry then.
  std::string value;
  std::string log_path = dir.path() + "/prometheus.log";
  pid_t pgid = -1;
  for (int attempt = 0; attempt < 3 && value.empty(); ++attempt) {
    uint16_t port = FreePort();
    ASSERT_NE(port, 0);
    SpawnOptions spawn;
    spawn.argv = {"prometheus", "--config.file=" + config,
                  "--storage.tsdb.path=" + dir.path() + "/tsdb" + std::to_string(attempt),
                  "--web.listen-address=127.0.0.1:" + std::to_string(port)};
    spawn.stdout_path = log_path;
    spawn.new_session = true;  // its own group: Terminate() reaches everything it starts
    auto child = ChildProcess::Spawn(spawn);
    ASSERT_TRUE(child.ok()) << child.status().ToString();
    pgid = child->pid();
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline && child->running() && !child->Poll()) {
      auto r = http::testing::Fetch(port, "GET", "/api/v1/query?query=gantry_queue_depth");
      if (r.status == 200) {
        auto body = nlohmann::json::parse(r.body, nullptr, false);
        if (!body.is_discarded() && body.value("status", "") == "success" &&
            body["data"]["result"].is_array() && !body["data"]["result"].empty()) {
          value = body["data"]["result"][0]["value"][1].get<std::string>();
          EXPECT_EQ(body["data"]["result"][0]["metric"]["job"], "gantry");
          break;
        }
      }
      std::this_thread::sleep_for(100ms);  // polling interval, bounded by the deadline
    }
    child->Terminate(5s);
    EXPECT_FALSE(GroupAlive(pgid));
  }
  EXPECT_EQ(value, "7") << "prometheus log:\n" << Shell("tail -30 " + log_path).second;
}

}  // namespace
}  // namespace gantry::prometheus
