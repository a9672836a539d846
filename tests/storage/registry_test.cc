#include "storage/registry.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/fs.h"
#include "storage/tensor_file.h"
#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

std::vector<uint8_t> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31);
  return v;
}

// A body with two tensors; the json must outlive the parsed Checkpoint.
json Body(const std::string& model, int64_t step, double loss) {
  return {{"model", model}, {"job_id", "j-20240101-000000-abcd"}, {"attempt", 2}, {"step", step},
          {"epoch", step / 10}, {"metrics", {{"loss", loss}}}, {"meta", {{"note", "test"}}},
          {"tensors", {{{"name", "fc.weight"}, {"dtype", "float32"}, {"shape", {4, 8}},
                        {"data", json::binary(Bytes(128, static_cast<uint8_t>(step)))}},
                       {{"name", "fc.bias"}, {"dtype", "float64"}, {"shape", {4}},
                        {"data", json::binary(Bytes(32, 3))}}}}};
}

Result<json> Save(Registry& reg, const json& body) {
  GANTRY_ASSIGN_OR_RETURN(Checkpoint c, ParseCheckpoint(body));
  return reg.Save(c);
}

class RegistryTest : public ::testing::Test {
 protected:
  Registry Open() {
    auto r = Registry::Open(dir_.path(), clock_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  }
  TempDir dir_;
  ManualClock clock_;
};

TEST_F(RegistryTest, SavesAndListsVersionsWithMetadata) {
  Registry reg = Open();
  for (int i = 1; i <= 3; ++i) {
    clock_.Advance(std::chrono::seconds(1));
    auto saved = Save(reg, Body("mnist", i * 10, 1.0 / i));
    ASSERT_TRUE(saved.ok()) << saved.status().ToString();
    EXPECT_EQ((*saved)["version"], i);
    EXPECT_EQ((*saved)["bytes"], 160);
    EXPECT_EQ((*saved)["path"], dir_.path() + "/checkpoints/mnist/v" + std::to_string(i));
  }
  ASSERT_TRUE(Save(reg, Body("other", 5, 0.1)).ok());

  auto list = reg.ListVersions("mnist");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  const json& versions = (*list)["versions"];
  ASSERT_EQ(versions.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const json& v = versions[i];
    EXPECT_EQ(v["version"], i + 1);
    EXPECT_EQ(v["job_id"], "j-20240101-000000-abcd");
    EXPECT_EQ(v["attempt"], 2);
    EXPECT_EQ(v["step"], (i + 1) * 10);
    EXPECT_EQ(v["epoch"], i + 1);
    EXPECT_DOUBLE_EQ(v["metrics"]["loss"].get<double>(), 1.0 / (i + 1));
    EXPECT_EQ(v["bytes"], 160);
    EXPECT_DOUBLE_EQ(v["created_at"].get<double>(), 1.7e9 + i + 1);
  }
  auto models = reg.ListModels();
  ASSERT_TRUE(models.ok());
  EXPECT_EQ((*models)["models"], json::parse(R"([{"name":"mnist","versions":3,"latest":3},
                                                 {"name":"other","versions":1,"latest":1}])"));
}

TEST_F(RegistryTest, WritesManifestTensorsAndChecksums) {
  Registry reg = Open();
  json body = Body("mnist", 7, 0.25);
  ASSERT_TRUE(Save(reg, body).ok());
  const std::string vdir = dir_.path() + "/checkpoints/mnist/v1";
  auto bin = ReadFile(vdir + "/tensors.bin");
  ASSERT_TRUE(bin.ok());
  ASSERT_EQ(bin->size(), 160u);

  auto got = reg.GetVersion("mnist", 1);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  const json& m = *got;
  EXPECT_EQ(m["path"], vdir);
  EXPECT_EQ(m["model"], "mnist");
  EXPECT_EQ(m["version"], 1);
  EXPECT_EQ(m["step"], 7);
  EXPECT_EQ(m["meta"]["note"], "test");
  ASSERT_EQ(m["tensors"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const json& t = m["tensors"][i];
    const auto& want = body["tensors"][i]["data"].get_binary();
    EXPECT_EQ(t["name"], body["tensors"][i]["name"]);
    EXPECT_EQ(t["dtype"], body["tensors"][i]["dtype"]);
    EXPECT_EQ(t["shape"], body["tensors"][i]["shape"]);
    ASSERT_EQ(t["bytes"].get<size_t>(), want.size());
    const auto* at = reinterpret_cast<const uint8_t*>(bin->data()) + t["offset"].get<size_t>();
    EXPECT_EQ(std::vector<uint8_t>(at, at + want.size()), static_cast<const std::vector<uint8_t>&>(want));
    EXPECT_EQ(t["crc32"].get<uint32_t>(), Crc32(want.data(), want.size()));
  }
  // Known CRC-32 of "123456789" pins the algorithm the manifest promises.
  const std::string check = "123456789";
  EXPECT_EQ(Crc32(reinterpret_cast<const uint8_t*>(check.data()), check.size()), 0xCBF43926u);
  // Nothing left behind in the model folder but the version.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_.path() + "/checkpoints/mnist")) {
    names.push_back(e.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"v1"});
}

TEST_F(RegistryTest, ReopenedRegistrySeesEarlierVersions) {
  {
    Registry reg = Open();
    ASSERT_TRUE(Save(reg, Body("mnist", 1, 1)).ok());
    ASSERT_TRUE(Save(reg, Body("mnist", 2, 1)).ok());
  }
  Registry reg = Open();
  auto list = reg.ListVersions("mnist");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)["versions"].size(), 2u);
  auto saved = Save(reg, Body("mnist", 3, 1));
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ((*saved)["version"], 3);
}

TEST_F(RegistryTest, SecondOpenOfTheSameDataDirIsRefused) {
  Registry reg = Open();
  auto second = Registry::Open(dir_.path(), clock_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(RegistryTest, UnknownModelsAndVersionsAreNotFound) {
  Registry reg = Open();
  auto list = reg.ListVersions("nope");
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), StatusCode::kNotFound);
  EXPECT_NE(list.status().message().find("model 'nope' has no checkpoints"), std::string::npos);
  ASSERT_TRUE(Save(reg, Body("mnist", 1, 1)).ok());
  auto got = reg.GetVersion("mnist", 4);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_NE(got.status().message().find("no version 4 (versions run from 1 to 1)"), std::string::npos);
  EXPECT_EQ(reg.ListVersions("../etc").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RegistryTest, OpenCleansUpInterruptedSaves) {
  const std::string model_dir = dir_.path() + "/checkpoints/mnist";
  {
    Registry reg = Open();
    ASSERT_TRUE(Save(reg, Body("mnist", 1, 1)).ok());
  }
  // A save that died while staging, and one that died after its rename but
  // before its COMMIT.
  ASSERT_TRUE(MakeDirs(model_dir + "/.staging-deadbeef").ok());
  ASSERT_TRUE(WriteFileAtomic(model_dir + "/.staging-deadbeef/tensors.bin", "partial").ok());
  ASSERT_TRUE(MakeDirs(model_dir + "/v2").ok());
  ASSERT_TRUE(WriteFileAtomic(model_dir + "/v2/tensors.bin", "uncommitted").ok());

  Registry reg = Open();
  EXPECT_FALSE(PathExists(model_dir + "/.staging-deadbeef"));
  EXPECT_TRUE(PathExists(model_dir + "/v1/manifest.json"));
  int orphans = 0;
  for (const auto& e : fs::directory_iterator(model_dir)) {
    if (e.path().filename().string().rfind(".orphan-v2-", 0) == 0) ++orphans;
  }
  EXPECT_EQ(orphans, 1);  // moved aside, not deleted
  auto saved = Save(reg, Body("mnist", 2, 1));
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ((*saved)["version"], 2);
}

}  // namespace
}  // namespace gantry::storage
