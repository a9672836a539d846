// gantry-monitor's wiring: downsampling, and the real binary on free ports
// answering /metrics (checked by promtool when installed), the REST API,
// and alert state that survives a restart on the same data directory.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <zmq.hpp>

#include "common/data_dir.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/rpc.h"
#include "monitor/downsample.h"
#include "tests/monitor/http_test_client.h"
#include "tests/monitor/test_support.h"

namespace gantry::monitor {
namespace {

using testing::Frame;
using testing::MetricsBody;
using testing::WaitFor;

TEST(DownsampleTest, HundredThousandPointsKeepFirstLastMinMax) {
  std::vector<SeriesPoint> in;
  for (int64_t i = 0; i < 100000; ++i) in.push_back({i, 1.0 * i, std::sin(i * 0.001)});
  in[31337].value = -50;  // a dip
  in[77777].value = 80;   // a spike
  for (int64_t max_points : {1, 2, 3, 10, 500, 2000}) {
    auto out = Downsample(in, max_points);
    EXPECT_LE(static_cast<int64_t>(out.size()), max_points);
    EXPECT_EQ(out.back().step, 99999);
    for (size_t i = 1; i < out.size(); ++i) EXPECT_LT(out[i - 1].step, out[i].step);
    if (max_points >= 4) {
      EXPECT_EQ(out.front().step, 0);
      bool dip = false, spike = false;
      for (const auto& p : out) dip |= p.step == 31337, spike |= p.step == 77777;
      EXPECT_TRUE(dip && spike) << max_points;
      EXPECT_GE(static_cast<int64_t>(out.size()), max_points - 2);
    }
  }
  EXPECT_EQ(Downsample(in, 200000).size(), in.size());
  // A NaN survives as the bucket's largest value.
  in[5000].value = std::numeric_limits<double>::quiet_NaN();
  bool nan = false;
  for (const auto& p : Downsample(in, 100)) nan |= std::isnan(p.value);
  EXPECT_TRUE(nan);
}

std::string Log(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : "";
}

uint16_t PortOf(const std::string& http_endpoint) {
  return static_cast<uint16_t>(std::stoi(http_endpoint.substr(http_endpoint.rfind(':') + 1)));
}

// One spawned gantry-monitor on free ports.
class Monitor {
 public:
  explicit Monitor(const std::string& data, const std::string& out) : data_(data) {
    SpawnOptions o;
    o.argv = {testing::BinDir() + "/gantry-monitor", "--data-dir", data, "--ingest", "tcp://127.0.0.1:0",
              "--feed", "tcp://127.0.0.1:0", "--api", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0",
              "--coordinator", "tcp://127.0.0.1:1", "--log-level", "warn"};
    o.stdout_path = out;
    auto child = ChildProcess::Spawn(o);
    if (!child.ok()) return;
    child_.emplace(std::move(child).value());
    DataDir dir(data);
    WaitFor([&] {
      if (child_->Poll()) return true;
      auto i = dir.ReadServiceInfo(kMonitor);
      if (i.ok() && i->pid == child_->pid()) info_ = *i;
      return i.ok() && i->pid == child_->pid();
    });
  }
  ~Monitor() { Stop(); }
  bool ok() const { return child_ && info_.endpoints.count("http") == 1; }
  uint16_t http_port() const { return PortOf(info_.endpoints.at("http")); }
  const std::string& endpoint(const std::string& name) const { return info_.endpoints.at(name); }
  bool Stop() {
    if (!child_ || child_->Poll()) return child_.has_value();
    child_->Signal(SIGTERM);
    return WaitFor([&] { return child_->Poll().has_value(); }) && child_->Poll()->ok();
  }

 private:
  std::string data_;
  std::optional<ChildProcess> child_;
  ServiceInfo info_;
};

json StateBody(const std::string& job, const std::string& state) {
  return {{"job_id", job}, {"state", state}, {"attempt", 1}, {"time", 1.7e9}};
}

TEST(MonitorWiringTest, MetricsPageApiAndPromtool) {
  if (testing::BinDir().empty()) GTEST_SKIP() << "GANTRY_BIN_DIR is not set";
  testing::TempDir tmp;
  Monitor m(tmp.path() + "/data", tmp.path() + "/monitor.out");
  ASSERT_TRUE(m.ok()) << Log(tmp.path() + "/monitor.out");

  zmq::context_t ctx;
  zmq::socket_t push(ctx, zmq::socket_type::dealer);
  push.set(zmq::sockopt::linger, 0);
  push.connect(m.endpoint("ingest"));
  push.send(zmq::buffer(Frame("job_state", StateBody("job-a", "RUNNING"))));
  push.send(zmq::buffer(Frame("job_state", StateBody("job-q", "QUEUED"))));
  const int64_t n = 20000;
  for (int64_t step = 1; step <= n; ++step) {
    json v = {{"loss", step == 7777 ? 99.0 : 1.0 / step}, {"accuracy", 0.5}, {"samples_per_sec", 1000.0},
              {"step_time", 0.01}};
    push.send(zmq::buffer(Frame("metrics", MetricsBody("job-a", step, v))));
  }
  push.send(zmq::buffer(Frame("metrics", MetricsBody("job-a", n, {{"step_time", 0.03}}, 1))));
  push.send(zmq::buffer(Frame("metrics", MetricsBody("job-a", n, {{"checkpoint_failed", 1}, {"checkpoint_step", n}}))));

  http::testing::Reply page;
  ASSERT_TRUE(WaitFor(
      [&] {
        page = http::testing::Fetch(m.http_port(), "GET", "/metrics");
        return page.body.find("gantry_ingest_points_total " + std::to_string(n + 2)) != std::string::npos;
      },
      std::chrono::seconds(30)))
      << page.body;
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("gantry_jobs{state=\"RUNNING\"} 1"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("gantry_queue_depth 1"), std::string::npos);
  EXPECT_NE(page.body.find("gantry_job_step{job=\"job-a\""), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("gantry_rank_step_seconds{"), std::string::npos);
  EXPECT_NE(page.body.find("rank=\"1\""), std::string::npos);
  EXPECT_NE(page.body.find("gantry_checkpoints_failed_total 1"), std::string::npos);
  EXPECT_EQ(page.body.find("job-q\""), std::string::npos) << "per-job gauges only for running jobs";

  if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
    std::ofstream(tmp.path() + "/metrics.txt") << page.body;
    std::string cmd = "promtool check metrics < " + tmp.path() + "/metrics.txt 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    size_t got;
    while ((got = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, got);
    int rc = ::pclose(p);
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << out;
    EXPECT_EQ(out, "") << page.body;
  }

  auto jobs = http::testing::Fetch(m.http_port(), "GET", "/api/jobs");
  ASSERT_EQ(jobs.status, 200);
  json j = json::parse(jobs.body);
  ASSERT_EQ(j["jobs"].size(), 2u);

  // Downsampled on the server: at most max_points, the spike and the last point kept.
  http::testing::Reply series;
  ASSERT_TRUE(WaitFor([&] {
    series = http::testing::Fetch(m.http_port(), "GET", "/api/jobs/job-a/metrics?max_points=100");
    if (series.status != 200) return false;
    auto loss = json::parse(series.body)["series"]["loss"];
    return !loss.empty() && loss.back()[0] == n;
  })) << series.body;
  json s = json::parse(series.body);
  const json& loss = s["series"]["loss"];
  EXPECT_LE(loss.size(), 100u);
  EXPECT_GE(loss.size(), 90u);
  bool spike = false;
  for (const auto& p : loss) spike |= p[0] == 7777 && p[2] == 99.0;
  EXPECT_TRUE(spike);
  EXPECT_EQ(s["rank_step_seconds"].size(), 2u);
  EXPECT_EQ(http::testing::Fetch(m.http_port(), "GET", "/api/jobs/nope/metrics").status, 404);
  EXPECT_EQ(http::testing::Fetch(m.http_port(), "GET", "/api/jobs/job-a/metrics?max_points=x").status, 400);
  EXPECT_EQ(json::parse(http::testing::Fetch(m.http_port(), "GET", "/api/drift").body)["results"].size(), 0u);
  EXPECT_TRUE(m.Stop());
}

TEST(MonitorWiringTest, FiringAlertSurvivesRestart) {
  if (testing::BinDir().empty()) GTEST_SKIP() << "GANTRY_BIN_DIR is not set";
  testing::TempDir tmp;
  const std::string data = tmp.path() + "/data";
  double since = 0;
  {
    Monitor m(data, tmp.path() + "/monitor1.out");
    ASSERT_TRUE(m.ok()) << Log(tmp.path() + "/monitor1.out");
    zmq::context_t ctx;
    zmq::socket_t push(ctx, zmq::socket_type::dealer);
    push.set(zmq::sockopt::linger, 0);
    push.connect(m.endpoint("ingest"));
    // An SSE client sees the job_state, point and alert events as ingested.
    http::testing::RawConn sse(m.http_port());
    ASSERT_TRUE(sse.connected());
    ASSERT_TRUE(sse.Send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_NE(sse.ReadUntil("\r\n\r\n", std::chrono::seconds(5)).find("text/event-stream"), std::string::npos)
        << sse.data();
    push.send(zmq::buffer(Frame("job_state", StateBody("job-nan", "RUNNING"))));
    push.send(zmq::buffer(Frame("metrics", MetricsBody("job-nan", 5, {{"loss", std::nan("")}}))));
    RpcClient api(ctx, m.endpoint("api"), std::chrono::seconds(5));
    json alert;
    ASSERT_TRUE(WaitFor([&] {
      auto r = api.Call("get_alerts", {{"job_id", "job-nan"}});
      if (!r.ok() || (*r)["alerts"].empty()) return false;
      alert = (*r)["alerts"][0];
      return true;
    })) << Log(tmp.path() + "/monitor1.out");
    EXPECT_EQ(alert["rule"], "loss-nonfinite");
    EXPECT_EQ(alert["state"], "firing");
    EXPECT_EQ(alert["action"], "cancel");
    since = alert["since"].get<double>();
    sse.ReadUntil("\"rule\":\"loss-nonfinite\"", std::chrono::seconds(5));
    EXPECT_NE(sse.data().find("event: job_state\ndata: {"), std::string::npos) << sse.data();
    EXPECT_NE(sse.data().find("event: point\ndata: {"), std::string::npos) << sse.data();
    EXPECT_NE(sse.data().find("event: alert\ndata: {"), std::string::npos) << sse.data();
    auto http_alerts = json::parse(http::testing::Fetch(m.http_port(), "GET", "/api/alerts").body);
    ASSERT_EQ(http_alerts["alerts"].size(), 1u);
    EXPECT_EQ(http_alerts["alerts"][0]["job_id"], "job-nan");
    auto page = http::testing::Fetch(m.http_port(), "GET", "/metrics").body;
    EXPECT_NE(page.find("rule=\"loss-nonfinite\""), std::string::npos) << page;
    EXPECT_TRUE(m.Stop());
  }
  Monitor again(data, tmp.path() + "/monitor2.out");
  ASSERT_TRUE(again.ok()) << Log(tmp.path() + "/monitor2.out");
  zmq::context_t ctx;
  RpcClient api(ctx, again.endpoint("api"), std::chrono::seconds(5));
  auto r = api.Call("get_alerts");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ((*r)["alerts"].size(), 1u) << r->dump();
  EXPECT_EQ((*r)["alerts"][0]["state"], "firing");
  EXPECT_DOUBLE_EQ((*r)["alerts"][0]["since"].get<double>(), since);
  // The restarted monitor lists the job from its stored history, with its
  // state and newest step, without counting the replay as ingest.
  auto jobs = json::parse(http::testing::Fetch(again.http_port(), "GET", "/api/jobs").body);
  ASSERT_EQ(jobs["jobs"].size(), 1u) << jobs.dump();
  EXPECT_EQ(jobs["jobs"][0]["job_id"], "job-nan");
  EXPECT_EQ(jobs["jobs"][0]["state"], "RUNNING");
  EXPECT_EQ(jobs["jobs"][0]["step"], 5);
  auto page = http::testing::Fetch(again.http_port(), "GET", "/metrics").body;
  EXPECT_NE(page.find("gantry_jobs{state=\"RUNNING\"} 1"), std::string::npos) << page;
  EXPECT_NE(page.find("gantry_ingest_points_total 0"), std::string::npos) << page;
}

}  // namespace
}  // namespace gantry::monitor
