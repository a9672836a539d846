// `gantry ckpt import` against a gantry-storage that is SIGKILLed while it
// handles the import (issue 8): the command exits non-zero within 10 s with
// a message naming the storage, or, when storage is back within the CLI's
// retry window, succeeds with exactly one version.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <optional>

#include "common/data_dir.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/rpc.h"
#include "storage/torch_io.h"
#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

using testing::TempDir;
using testing::WaitFor;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::string Text(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : "(no " + path + ")";
}

class ImportCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::BinDir().empty()) GTEST_SKIP() << "GANTRY_BIN_DIR is not set";
    if (!TorchInteropAvailable()) GTEST_SKIP() << "built without LibTorch: no import";
    // Big enough that storage spends a while in the handler (decode, hash,
    // write, fsync), so the kill lands inside it.
    std::vector<StateDictTensor> tensors;
    for (int i = 0; i < 4; ++i) {
      StateDictTensor t;
      t.name = "layer" + std::to_string(i) + ".weight";
      t.dtype = DType::kFloat32;
      t.shape = {1024, 8192};
      t.data.resize(1024 * 8192 * 4);
      for (size_t j = 0; j < t.data.size(); j += 4096) t.data[j] = static_cast<uint8_t>(i + j / 4096);
      tensors.push_back(std::move(t));
    }
    auto bytes = EncodeTorchStateDict(tensors);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    ASSERT_TRUE(WriteFileAtomic(file, *bytes).ok());
    StartStorage("tcp://127.0.0.1:0");
  }

  void StartStorage(const std::string& bind) {
    SpawnOptions o;
    o.argv = {testing::BinDir() + "/gantry-storage", "--data-dir", data, "--bind", bind, "--log-level", "warn"};
    o.stdout_path = data + ".storage.out";
    auto started = ChildProcess::Spawn(o);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    storage.emplace(std::move(started).value());
    std::string ep;
    WaitFor([&] {
      if (storage->Poll()) return true;
      auto info = dir.ReadServiceInfo(kStorage);
      if (info.ok() && info->pid == storage->pid()) ep = info->endpoints["api"];
      return !ep.empty();
    }, std::chrono::seconds(20));
    ASSERT_FALSE(ep.empty()) << "gantry-storage did not start: " << Text(data + ".storage.out");
    endpoint = ep;
  }

  ChildProcess StartImport() {
    SpawnOptions o;
    o.argv = {testing::BinDir() + "/gantry", "--data-dir", data, "ckpt", "import", "big", file};
    o.stdout_path = out;
    auto started = ChildProcess::Spawn(o);
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    return std::move(started).value();
  }

  // True once storage is inside the import: its staging folder exists.
  bool Saving() const {
    std::error_code ec;
    const fs::path model = fs::path(data) / "checkpoints" / "big";
    for (const auto& e : fs::directory_iterator(model, ec)) {
      if (e.path().filename().string().rfind(".staging-", 0) == 0) return true;
    }
    return false;
  }

  int64_t Versions() {
    zmq::context_t ctx;
    RpcClient c(ctx, endpoint, std::chrono::seconds(10));
    auto list = c.Call("list_versions", {{"model", "big"}});
    if (!list.ok()) return list.status().code() == StatusCode::kNotFound ? 0 : -1;
    return static_cast<int64_t>((*list)["versions"].size());
  }

  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  const std::string file = tmp.path() + "/big.pt";
  const std::string out = tmp.path() + "/import.out";
  DataDir dir{data};
  std::optional<ChildProcess> storage;
  std::string endpoint;
};

TEST_F(ImportCrashTest, StorageKilledMidImportFailsFastNamingTheStorage) {
  ChildProcess cli = StartImport();
  ASSERT_TRUE(WaitFor([&] { return Saving() || cli.Poll().has_value(); }, std::chrono::seconds(60)));
  ASSERT_TRUE(cli.running()) << "the import ended before storage was killed: " << Text(out);
  const auto killed = Clock::now();
  storage->Signal(SIGKILL);
  storage->Wait();
  ASSERT_TRUE(WaitFor([&] { return cli.Poll().has_value(); }, std::chrono::seconds(20)));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed).count();
  const ExitInfo exit = *cli.Poll();
  const std::string said = Text(out);
  EXPECT_FALSE(exit.ok()) << said;
  EXPECT_LT(took, 10000) << said;
  EXPECT_NE(said.find("storage"), std::string::npos) << said;
  EXPECT_NE(said.find(endpoint), std::string::npos) << said;
  std::printf("import exited %s %lld ms after storage was killed: %s", exit.ToString().c_str(),
              static_cast<long long>(took), said.c_str());
}

TEST_F(ImportCrashTest, StorageRestartedMidImportLeavesExactlyOneVersion) {
  ChildProcess cli = StartImport();
  ASSERT_TRUE(WaitFor([&] { return Saving() || cli.Poll().has_value(); }, std::chrono::seconds(60)));
  ASSERT_TRUE(cli.running()) << "the import ended before storage was killed: " << Text(out);
  const std::string was = endpoint;
  const auto killed = Clock::now();
  storage->Signal(SIGKILL);
  storage->Wait();
  StartStorage(was);  // same port: what a supervisor restart does
  ASSERT_EQ(endpoint, was);
  ASSERT_TRUE(WaitFor([&] { return cli.Poll().has_value(); }, std::chrono::seconds(60)));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed).count();
  const std::string said = Text(out);
  // Issue 8 accepts either end: the retried import succeeds once storage is
  // back (one version), or, when the restart outlasts the client's liveness
  // window (a loaded machine), the import fails naming the storage. Never a
  // second version.
  if (cli.Poll()->ok()) {
    EXPECT_NE(said.find("imported as big v1"), std::string::npos) << said;
    EXPECT_EQ(Versions(), 1);
  } else {
    EXPECT_NE(said.find("storage"), std::string::npos) << said;
    EXPECT_LE(Versions(), 1);
  }
  std::printf("import finished %lld ms after storage was killed and restarted: %s", static_cast<long long>(took),
              said.c_str());
}

}  // namespace
}  // namespace gantry::storage
