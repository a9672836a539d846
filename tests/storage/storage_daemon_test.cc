// Runs the real gantry-storage binary on a free port in a temp data dir.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <thread>
#include <zmq.hpp>

#include "common/data_dir.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/rpc.h"
#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

using testing::TempDir;
using testing::WaitFor;

Result<ChildProcess> StartStorage(const std::string& data, const std::string& bind) {
  SpawnOptions o;
  o.argv = {testing::BinDir() + "/gantry-storage", "--data-dir", data, "--bind", bind,
            "--log-level", "warn"};
  o.stdout_path = data + ".out";
  return ChildProcess::Spawn(o);
}

// Sends one raw frame as a DEALER (with the empty delimiter) and returns the
// raw reply, or "" after two seconds.
std::string RawCall(zmq::context_t& ctx, const std::string& endpoint, const std::string& payload) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  s.send(zmq::message_t(), zmq::send_flags::sndmore);
  s.send(zmq::buffer(payload), zmq::send_flags::none);
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(2000));
  if (!(item.revents & ZMQ_POLLIN)) return "";
  zmq::message_t delim, reply;
  (void)s.recv(delim);
  (void)s.recv(reply);
  return reply.to_string();
}

// The daemon's API endpoint once its run file appears; empty if it died or
// did not publish in time.
std::string WaitForEndpoint(ChildProcess& child, const DataDir& dir) {
  std::string endpoint;
  WaitFor([&] {
    if (child.Poll()) return true;  // died: the caller fails instead of waiting
    auto info = dir.ReadServiceInfo(kStorage);
    if (info.ok()) endpoint = info->endpoints["api"];
    return info.ok();
  });
  return endpoint;
}

// Each test starts its own daemon on a free port in a fresh data dir.
class StorageDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::BinDir().empty()) GTEST_SKIP() << "GANTRY_BIN_DIR is not set";
    auto started = StartStorage(data, "tcp://127.0.0.1:0");
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    child.emplace(std::move(started).value());
    endpoint = WaitForEndpoint(*child, dir);
    ASSERT_FALSE(endpoint.empty()) << "gantry-storage exited: " << ReadFile(data + ".out").value();
  }

  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  DataDir dir{data};
  std::optional<ChildProcess> child;
  std::string endpoint;
};

TEST_F(StorageDaemonTest, ServesSurvivesGarbageAndStopsOnSigterm) {

  zmq::context_t ctx;
  // Garbage gets an error reply; the daemon keeps serving.
  auto garbage = DecodeReply(RawCall(ctx, endpoint, "this is not msgpack"));
  ASSERT_TRUE(garbage.ok()) << garbage.status().ToString();
  EXPECT_EQ(garbage->status.code(), StatusCode::kInvalidArgument);

  RpcClient client(ctx, endpoint, std::chrono::seconds(5));
  json body = {{"model", "daemon-model"}, {"step", 3},
               {"tensors", {{{"name", "w"}, {"dtype", "uint8"}, {"shape", {3}},
                             {"data", json::binary({1, 2, 3})}}}}};
  auto saved = client.Call("save_checkpoint", body);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ((*saved)["version"], 1);
  EXPECT_TRUE(PathExists(data + "/checkpoints/daemon-model/v1/manifest.json"));

  // A second daemon on the same port fails with a clear message.
  auto second = StartStorage(tmp.path() + "/other", endpoint);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(WaitFor([&] { return second->Poll().has_value(); }));
  EXPECT_FALSE(second->Poll()->ok());
  EXPECT_NE(ReadFile(tmp.path() + "/other.out").value().find("cannot bind"), std::string::npos);

  child->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return child->Poll().has_value(); }));
  EXPECT_TRUE(child->Poll()->ok()) << child->Poll()->ToString();
  EXPECT_FALSE(PathExists(dir.RunFile(kStorage)));
}

// Four clients save to one model at once: every save is acknowledged with
// its own number, the numbers are exactly 1..40, and each row belongs to
// the writer that was told that number.
TEST_F(StorageDaemonTest, FourWritersGetDistinctGapFreeVersions) {

  constexpr int kWriters = 4;
  constexpr int kSaves = 10;
  std::vector<std::vector<int64_t>> got(kWriters);
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      zmq::context_t ctx;
      RpcClient client(ctx, endpoint, std::chrono::seconds(30));
      for (int i = 0; i < kSaves; ++i) {
        json body = testing::SaveBody("shared", i, {testing::ByteTensor("w", testing::Pattern(100000, w * 100 + i))});
        body["job_id"] = "writer-" + std::to_string(w);
        auto r = client.Call("save_checkpoint", body);
        if (!r.ok()) {
          ++failures;
          continue;
        }
        got[w].push_back((*r)["version"].get<int64_t>());
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);

  std::vector<int64_t> all;
  std::map<int64_t, int> owner;
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_TRUE(std::is_sorted(got[w].begin(), got[w].end())) << "writer " << w;
    for (int64_t v : got[w]) {
      all.push_back(v);
      owner[v] = w;
    }
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(kWriters * kSaves);
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<int64_t>(i) + 1;
  EXPECT_EQ(all, expected);

  zmq::context_t ctx;
  RpcClient client(ctx, endpoint, std::chrono::seconds(10));
  auto list = client.Call("list_versions", {{"model", "shared"}});
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ((*list)["versions"].size(), expected.size());
  for (const auto& v : (*list)["versions"]) {
    EXPECT_EQ(v["job_id"], "writer-" + std::to_string(owner[v["version"].get<int64_t>()]));
  }
  auto fsck = client.Call("fsck", json::object());
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE((*fsck)["ok"].get<bool>()) << fsck->dump(2);
  child->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return child->Poll().has_value(); }));
}

}  // namespace
}  // namespace gantry::storage
