// Crash safety under real SIGKILLs: gantry-storage is killed at random
// moments while it saves checkpoints, applies retention and collects
// garbage, compaction included (100 saves in all). After every restart:
//   - fsck reports no problem (recovery finished or rolled back everything);
//   - every acknowledged version loads with matching checksums and bytes,
//     unless retention was entitled to delete it;
//   - after a gc, the data dir holds exactly the files the index references,
//     and the index no blob or pack that no version uses.
// Set GANTRY_FAULT_SEED to replay a run; the seed is printed on failure.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <zmq.hpp>

#include "common/data_dir.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/rpc.h"
#include "common/sqlite.h"
#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

using testing::Pattern;
namespace fs = std::filesystem;

constexpr int kTotalSaves = 100;
constexpr int kKeepLatest = 3;
constexpr size_t kLayerBytes = 1 << 20;     // a blob of its own per save
constexpr size_t kFrozenBytes = 256 << 10;  // one blob shared by every save
constexpr const char* kModel = "fault";

json SaveRequest(int64_t seed) {
  return {{"model", kModel}, {"step", seed}, {"metrics", {{"loss", 1.0 / static_cast<double>(seed + 1)}}},
          {"tensors", {testing::ByteTensor("frozen", Pattern(kFrozenBytes, 1)),
                       testing::ByteTensor("layer", Pattern(kLayerBytes, 1000 + seed)),
                       testing::ByteTensor("bias", Pattern(100, 2000 + seed))}}};
}

class StorageFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::BinDir().empty()) GTEST_SKIP() << "GANTRY_BIN_DIR is not set";
    const char* env = std::getenv("GANTRY_FAULT_SEED");
    seed_ = env ? std::stoull(env) : std::random_device{}();
    rng_.seed(seed_);
    data_ = tmp_.path() + "/data";
  }

  // Starts the daemon and waits for its run file; returns the endpoint.
  std::string Start() {
    SpawnOptions o;
    o.argv = {testing::BinDir() + "/gantry-storage", "--data-dir", data_, "--bind", "tcp://127.0.0.1:0",
              "--log-level", "info"};
    o.stdout_path = tmp_.path() + "/storage.out";
    auto child = ChildProcess::Spawn(o);
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    child_ = std::move(child).value();
    DataDir dir(data_);
    std::string endpoint;
    bool up = testing::WaitFor(
        [&] {
          auto info = dir.ReadServiceInfo(kStorage);
          if (info.ok() && info->pid == child_.pid()) endpoint = info->endpoints["api"];
          return !endpoint.empty() || child_.Poll().has_value();
        },
        std::chrono::seconds(20));
    EXPECT_TRUE(up && !endpoint.empty()) << "gantry-storage did not start:\n"
                                         << ReadFile(tmp_.path() + "/storage.out").value();
    return endpoint;
  }

  void Kill() {
    child_.Signal(SIGKILL);
    child_.Wait();
    ++kills_;
    // The killed daemon could not remove its run file.
    DataDir(data_).RemoveServiceInfo(kStorage);
  }

  // The checks after each restart (see the file comment).
  void Verify(RpcClient& client) {
    auto fsck = client.Call("fsck", json::object(), std::chrono::seconds(30));
    ASSERT_TRUE(fsck.ok()) << fsck.status().ToString();
    ASSERT_TRUE((*fsck)["ok"].get<bool>()) << "after " << kills_ << " kills: " << fsck->dump(2);

    std::set<int64_t> present;
    auto list = client.Call("list_versions", {{"model", kModel}});
    if (list.ok()) {
      for (const auto& v : (*list)["versions"]) present.insert(v["version"].get<int64_t>());
    } else {
      ASSERT_EQ(list.status().code(), StatusCode::kNotFound) << list.status().ToString();
    }
    for (const auto& [version, seed] : acked_) {
      if (!present.count(version)) {
        // Only retention may have removed it: kKeepLatest newer versions exist.
        size_t newer = static_cast<size_t>(std::distance(present.upper_bound(version), present.end()));
        EXPECT_GE(newer, static_cast<size_t>(kKeepLatest)) << "acknowledged v" << version << " vanished";
        EXPECT_NE(version, pinned_) << "the aliased version was deleted";
        continue;
      }
      auto loaded = client.Call("load_checkpoint", {{"model", kModel}, {"ref", "v" + std::to_string(version)}},
                                std::chrono::seconds(30));
      ASSERT_TRUE(loaded.ok()) << "v" << version << ": " << loaded.status().ToString();
      json want = SaveRequest(seed)["tensors"];
      ASSERT_EQ((*loaded)["tensors"].size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_TRUE((*loaded)["tensors"][i]["data"] == want[i]["data"]) << "v" << version << " tensor " << i;
      }
    }
  }

  // After a gc: the folders and pack files are exactly what the index
  // uses, and the index holds nothing that no version uses.
  void ExpectNoOrphans(RpcClient& client) {
    auto gc = client.Call("gc", json::object(), std::chrono::seconds(30));
    ASSERT_TRUE(gc.ok()) << gc.status().ToString();
    std::set<std::string> want_dirs;
    auto list = client.Call("list_versions", {{"model", kModel}});
    if (list.ok()) {
      for (const auto& v : (*list)["versions"]) want_dirs.insert("v" + std::to_string(v["version"].get<int64_t>()));
    }
    // A reader beside the service (WAL): which packs the index names, and
    // whether any blob or pack is unused.
    std::set<std::string> want_packs;
    int64_t unused = -1;
    {
      auto db = sql::Db::Open(data_ + "/registry.db");
      ASSERT_TRUE(db.ok()) << db.status().ToString();
      auto q = db->Prepare("SELECT name FROM packs");
      ASSERT_TRUE(q.ok());
      while (q->Step().value()) want_packs.insert(q->ColumnText(0));
      auto u = db->Prepare(
          "SELECT (SELECT COUNT(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM version_tensors t WHERE t.blob = b.key))"
          " + (SELECT COUNT(*) FROM packs p WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.pack = p.name))"
          " + (SELECT COUNT(*) FROM pending_deletes)");
      ASSERT_TRUE(u.ok() && u->Step().value());
      unused = u->ColumnInt(0);
    }
    EXPECT_EQ(unused, 0);
    std::set<std::string> dirs, packs;
    std::error_code ec;
    for (fs::directory_iterator it(data_ + "/checkpoints/" + kModel, ec), end; !ec && it != end; it.increment(ec)) {
      dirs.insert(it->path().filename().string());
    }
    for (fs::directory_iterator it(data_ + "/checkpoints/.packs", ec), end; !ec && it != end; it.increment(ec)) {
      packs.insert(it->path().filename().string());
    }
    EXPECT_EQ(dirs, want_dirs);
    EXPECT_EQ(packs, want_packs);
  }

  testing::TempDir tmp_;
  std::string data_;
  ChildProcess child_;
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  std::map<int64_t, int64_t> acked_;  // version -> content seed
  int64_t pinned_ = 0;
  int kills_ = 0;
};

TEST_F(StorageFaultTest, SigkillDuringSavesAndGcNeverLosesAcknowledgedData) {
  SCOPED_TRACE("GANTRY_FAULT_SEED=" + std::to_string(seed_));
  zmq::context_t ctx;
  int saves_sent = 0;
  int64_t next_seed = 0;
  std::uniform_real_distribution<double> unit(0, 1);
  const auto started = std::chrono::steady_clock::now();
  while (saves_sent < kTotalSaves) {
    const std::string endpoint = Start();
    ASSERT_FALSE(endpoint.empty());
    {
      RpcClient client(ctx, endpoint, std::chrono::seconds(30));
      ASSERT_NO_FATAL_FAILURE(Verify(client));
      if (kills_ % 4 == 0) {
        ASSERT_NO_FATAL_FAILURE(ExpectNoOrphans(client));
      }
      if (saves_sent == 0) {
        EXPECT_TRUE(client.Call("set_retention", {{"model", kModel}, {"keep_latest", kKeepLatest}}).ok());
      }
      if (pinned_ == 0 && !acked_.empty()) {
        pinned_ = acked_.begin()->first;
        auto set = client.Call("set_alias", {{"model", kModel}, {"alias", "pinned"}, {"ref", "v" + std::to_string(pinned_)}});
        if (!set.ok()) pinned_ = 0;  // already deleted by retention; pin a later one next round
      }
    }
    // Chaos: a few requests on a raw socket, then SIGKILL at a random time
    // into one of them (or between them).
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(endpoint);
    const int ops = 2 + static_cast<int>(rng_() % 5);
    const int kill_at = static_cast<int>(rng_() % ops);
    for (int op = 0; op < ops && saves_sent < kTotalSaves; ++op) {
      const bool is_save = unit(rng_) < 0.8;
      const int64_t seed = next_seed++;
      Request req{is_save ? "save_checkpoint" : "gc", "op-" + std::to_string(seed), "",
                  is_save ? SaveRequest(seed) : json::object()};
      s.send(zmq::message_t(), zmq::send_flags::sndmore);
      s.send(zmq::buffer(EncodeRequest(req)), zmq::send_flags::none);
      if (is_save) ++saves_sent;
      // A save of ~1.3 MB with its fsyncs takes a few to a few tens of ms.
      const bool kill_now = op == kill_at;
      const auto deadline = std::chrono::steady_clock::now() +
                            (kill_now ? std::chrono::microseconds(static_cast<int64_t>(unit(rng_) * 40000))
                                      : std::chrono::microseconds(30000000));
      bool replied = false;
      while (!replied) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::min(left, std::chrono::milliseconds(5)));
        if (!(item.revents & ZMQ_POLLIN)) continue;
        zmq::message_t delim, payload;
        (void)s.recv(delim);
        (void)s.recv(payload);
        auto rep = DecodeReply(payload.to_string());
        ASSERT_TRUE(rep.ok());
        ASSERT_TRUE(rep->status.ok()) << req.type << ": " << rep->status.ToString();
        if (is_save) acked_[rep->body["version"].get<int64_t>()] = seed;
        replied = true;
      }
      if (kill_now) break;
      ASSERT_TRUE(replied) << req.type << " got no reply in 30 s";
    }
    Kill();
  }
  // A final restart: everything still checks out, and nothing is left over.
  const std::string endpoint = Start();
  RpcClient client(ctx, endpoint, std::chrono::seconds(30));
  ASSERT_NO_FATAL_FAILURE(Verify(client));
  ASSERT_NO_FATAL_FAILURE(ExpectNoOrphans(client));
  EXPECT_GE(acked_.size(), 10u) << "too few saves completed to mean anything";
  child_.Signal(SIGTERM);
  child_.Wait();
  // The kills must have hit saves in flight, or the test proved little:
  // recovery logs each staging folder, blob and version folder it rolls back.
  auto log = ReadFile(data_ + "/logs/storage.log");
  ASSERT_TRUE(log.ok());
  size_t rolled_back = 0;
  std::map<std::string, int> kinds;  // staging folders, packs, version folders
  for (size_t at = log->find("not referenced by the index"); at != std::string::npos;
       at = log->find("not referenced by the index", at + 1)) {
    ++rolled_back;
    const std::string line = log->substr(log->rfind('\n', at) + 1, at - log->rfind('\n', at));
    ++kinds[line.find(".staging-") != std::string::npos ? "staging"
            : line.find(".packs/") != std::string::npos ? "pack"
                                                        : "version"];
  }
  EXPECT_GT(rolled_back, 0u) << "no SIGKILL landed inside a save";
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "fault test: " << saves_sent << " saves sent, " << acked_.size() << " acknowledged, " << kills_
            << " SIGKILLs, " << rolled_back << " paths rolled back (" << json(kinds).dump() << "), " << secs << " s, seed " << seed_ << "\n";
}

}  // namespace
}  // namespace gantry::storage
