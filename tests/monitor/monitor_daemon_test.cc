// Runs the real gantry-monitor binary on free ports in a temp data dir.
#include <gtest/gtest.h>
#include <signal.h>

#include <zmq.hpp>

#include "common/data_dir.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/rpc.h"
#include "monitor/metrics_store.h"
#include "tests/monitor/test_support.h"

namespace gantry::monitor {
namespace {

using testing::Frame;
using testing::MetricsBody;
using testing::WaitFor;

TEST(MonitorDaemonTest, IngestsSurvivesGarbageAndStopsOnSigterm) {
  if (testing::BinDir().empty()) GTEST_SKIP() << "GANTRY_BIN_DIR is not set";
  testing::TempDir tmp;
  const std::string data = tmp.path() + "/data";
  SpawnOptions o;
  o.argv = {testing::BinDir() + "/gantry-monitor", "--data-dir", data,
            "--ingest", "tcp://127.0.0.1:0", "--feed", "tcp://127.0.0.1:0",
            "--api", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "warn"};
  o.stdout_path = tmp.path() + "/monitor.out";
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok()) << child.status().ToString();

  DataDir dir(data);
  ServiceInfo info;
  ASSERT_TRUE(WaitFor([&] {
    if (child->Poll()) return true;  // died: fail below instead of waiting
    auto i = dir.ReadServiceInfo(kMonitor);
    if (i.ok()) info = *i;
    return i.ok();
  }));
  ASSERT_EQ(info.endpoints.size(), 4u) << "gantry-monitor exited: " << ReadFile(o.stdout_path).value();

  zmq::context_t ctx;
  zmq::socket_t push(ctx, zmq::socket_type::dealer);
  push.set(zmq::sockopt::linger, 0);
  push.connect(info.endpoints["ingest"]);
  push.send(zmq::buffer(std::string("\xc1\xc1 malformed")));
  push.send(zmq::buffer(Frame("metrics", MetricsBody("j-daemon", 1, {{"loss", 0.5}}))));

  RpcClient client(ctx, info.endpoints["api"], std::chrono::seconds(5));
  ASSERT_TRUE(WaitFor([&] {
    auto r = client.Call("get_metrics", {{"job_id", "j-daemon"}});
    return r.ok() && (*r)["points"].size() == 1;
  }));
  auto bad = client.Call("get_metrics", {{"job_id", 5}});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);

  // A point received just before SIGTERM is written at shutdown.
  push.send(zmq::buffer(Frame("metrics", MetricsBody("j-daemon", 2, {{"loss", 0.25}}))));
  ASSERT_TRUE(WaitFor([&] {
    auto r = client.Call("stats");
    return r.ok() && (*r)["points_ingested"] == 2 && (*r)["messages_dropped"] == 1;
  }));
  child->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return child->Poll().has_value(); }));
  EXPECT_TRUE(child->Poll()->ok()) << child->Poll()->ToString();
  EXPECT_FALSE(PathExists(dir.RunFile(kMonitor)));

  auto store = MetricsStore::Open(data + "/monitor.db");
  ASSERT_TRUE(store.ok());
  auto points = store->Points("j-daemon", -1, 10);
  ASSERT_TRUE(points.ok());
  EXPECT_EQ(points->size(), 2u);
}

}  // namespace
}  // namespace gantry::monitor
