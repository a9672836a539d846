// gantry-monitor --drift-watch: the real binary watches a temp directory;
// each new CSV shard is compared with a reference CSV, the results show on
// /api/drift and /metrics, a drifted shard fires the drift rule, and the
// results survive a restart without being recomputed.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <random>
#include <sstream>

#include "common/data_dir.h"
#include "common/fs.h"
#include "common/process.h"
#include "tests/monitor/http_test_client.h"
#include "tests/monitor/test_support.h"

namespace gantry::monitor {
namespace {

using testing::WaitFor;

// `rows` rows of three Gaussian features (mean `shift`) and a label in 0..2.
std::string Csv(int rows, double shift, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(shift, 1.0);
  std::ostringstream out;
  out << "a,b,c,label\n";
  for (int i = 0; i < rows; ++i) out << n(rng) << "," << n(rng) << "," << n(rng) << "," << i % 3 << "\n";
  return out.str();
}

struct Monitor {
  std::optional<ChildProcess> child;
  uint16_t http_port = 0;
  std::string log;
};

// The watch from flags or, with `config`, from that cluster config's
// monitor.drift_watch (what `gantry up --config` passes on).
Monitor Start(const std::string& data, const std::string& watch, const std::string& ref, const std::string& log,
              const std::string& config = "") {
  SpawnOptions o;
  o.argv = {testing::BinDir() + "/gantry-monitor", "--data-dir", data, "--ingest", "tcp://127.0.0.1:0",
            "--feed", "tcp://127.0.0.1:0", "--api", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0",
            "--log-level", "info"};
  if (config.empty()) {
    for (const std::string& a : {std::string("--drift-watch"), watch, std::string("--drift-reference"), ref,
                                 std::string("--drift-interval"), std::string("0.2")}) {
      o.argv.push_back(a);
    }
  } else {
    EXPECT_TRUE(WriteFileAtomic(config, "monitor:\n  drift_watch: {dir: \"" + watch + "\", reference: \"" + ref +
                                            "\", interval_seconds: 0.2}\n")
                    .ok());
    o.argv.push_back("--config");
    o.argv.push_back(config);
  }
  o.stdout_path = log;
  Monitor m;
  m.log = log;
  auto child = ChildProcess::Spawn(o);
  EXPECT_TRUE(child.ok()) << child.status().ToString();
  if (!child.ok()) return m;
  m.child.emplace(std::move(child).value());
  DataDir dir(data);
  std::string http;
  EXPECT_TRUE(WaitFor([&] {
    if (m.child->Poll()) return true;
    auto i = dir.ReadServiceInfo(kMonitor);
    if (i.ok()) http = i->endpoints["http"];
    return i.ok();
  }, std::chrono::seconds(20)));
  if (auto colon = http.rfind(':'); colon != std::string::npos) m.http_port = std::stoi(http.substr(colon + 1));
  return m;
}

std::string Log(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : std::string();
}

json Results(uint16_t port) {
  auto r = http::testing::Fetch(port, "GET", "/api/drift");
  if (r.status != 200) return json::array();
  return json::parse(r.body)["results"];
}

TEST(DriftWatchTest, NewShardsAreCheckedStoredAndAlerted) {
  if (testing::BinDir().empty()) GTEST_SKIP() << "GANTRY_BIN_DIR is not set";
  testing::TempDir tmp;
  const std::string data = tmp.path() + "/data", watch = tmp.path() + "/incoming", ref = tmp.path() + "/ref.csv";
  std::filesystem::create_directories(watch);
  ASSERT_TRUE(WriteFileAtomic(ref, Csv(2000, 0.0, 1)).ok());

  Monitor m = Start(data, watch, ref, tmp.path() + "/monitor1.out");
  ASSERT_NE(m.http_port, 0) << Log(m.log);
  EXPECT_EQ(Results(m.http_port).size(), 0u);

  // Written under a temporary name, then renamed: the watcher skips *.tmp.
  ASSERT_TRUE(WriteFileAtomic(watch + "/part-0001.csv", Csv(500, 0.0, 2)).ok());
  ASSERT_TRUE(WriteFileAtomic(watch + "/part-0002.csv", Csv(500, 1.0, 3)).ok());
  json results;
  ASSERT_TRUE(WaitFor([&] {
    results = Results(m.http_port);
    return results.size() == 2;
  }, std::chrono::seconds(60))) << Log(m.log);
  std::map<std::string, json> by_file;
  for (const json& r : results) by_file[r["file"]] = r;
  EXPECT_FALSE(by_file["part-0001.csv"]["drifted"].get<bool>()) << by_file["part-0001.csv"].dump();
  EXPECT_TRUE(by_file["part-0002.csv"]["drifted"].get<bool>()) << by_file["part-0002.csv"].dump();
  EXPECT_EQ(by_file["part-0002.csv"]["tested"], 4);  // a, b, c and the label
  EXPECT_EQ(by_file["part-0002.csv"]["dataset"], watch);
  EXPECT_FALSE(by_file["part-0002.csv"]["features"].empty());

  auto metrics = http::testing::Fetch(m.http_port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("gantry_drift_share{dataset=\"" + watch + "\"}"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("gantry_drift_detected{dataset=\"" + watch + "\"} 1"), std::string::npos);

  // The built-in data-drift rule fires on the latest (drifted) result.
  ASSERT_TRUE(WaitFor([&] {
    auto a = http::testing::Fetch(m.http_port, "GET", "/api/alerts");
    return a.status == 200 && a.body.find("data-drift") != std::string::npos &&
           a.body.find("firing") != std::string::npos;
  }, std::chrono::seconds(20))) << http::testing::Fetch(m.http_port, "GET", "/api/alerts").body;

  m.child->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return m.child->Poll().has_value(); }, std::chrono::seconds(20)));

  // Restart, the watch now given by a cluster config: both results come
  // back from drift.db, nothing is recomputed, and new shards are checked.
  Monitor m2 = Start(data, watch, ref, tmp.path() + "/monitor2.out", tmp.path() + "/cluster.yaml");
  ASSERT_NE(m2.http_port, 0);
  json again = Results(m2.http_port);
  ASSERT_EQ(again.size(), 2u);
  ASSERT_TRUE(WriteFileAtomic(watch + "/part-0003.csv", Csv(500, 0.0, 4)).ok());
  ASSERT_TRUE(WaitFor([&] { return Results(m2.http_port).size() == 3; }, std::chrono::seconds(60)));
  json third = Results(m2.http_port);
  std::set<int64_t> ids;
  for (const json& r : third) ids.insert(r["id"].get<int64_t>());
  EXPECT_EQ(ids.size(), 3u);
  m2.child->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return m2.child->Poll().has_value(); }, std::chrono::seconds(20)));
}

}  // namespace
}  // namespace gantry::monitor
