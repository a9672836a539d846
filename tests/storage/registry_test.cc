#include "storage/registry.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/fs.h"
#include "common/sqlite.h"
#include "storage/checksum.h"
#include "storage/content_hash.h"
#include "storage/storage_json.h"
#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

using testing::ByteTensor;
using testing::Pattern;
using testing::SaveBody;
using testing::SaveJson;
using testing::TempDir;
namespace fs = std::filesystem;

std::vector<uint8_t> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31);
  return v;
}

// A body with two small tensors.
json Body(const std::string& model, int64_t step, double loss) {
  return {{"model", model}, {"job_id", "j-20240101-000000-abcd"}, {"attempt", 2}, {"step", step},
          {"epoch", step / 10}, {"metrics", {{"loss", loss}}}, {"meta", {{"note", "test"}}},
          {"tensors", {{{"name", "fc.weight"}, {"dtype", "float32"}, {"shape", {4, 8}},
                        {"data", json::binary(Bytes(128, static_cast<uint8_t>(step)))}},
                       {{"name", "fc.bias"}, {"dtype", "float64"}, {"shape", {4}},
                        {"data", json::binary(Bytes(32, 3))}}}}};
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

using RegistryTest = testing::RegistryTestBase;

TEST_F(RegistryTest, SavesAndListsVersionsWithMetadata) {
  Registry reg = Open();
  for (int i = 1; i <= 3; ++i) {
    clock_.Advance(std::chrono::seconds(1));
    auto saved = SaveJson(reg, Body("mnist", i * 10, 1.0 / i));
    ASSERT_TRUE(saved.ok()) << saved.status().ToString();
    EXPECT_EQ(saved->version, i);
    EXPECT_EQ(saved->bytes, 160u);
    EXPECT_EQ(saved->path, dir_.path() + "/checkpoints/mnist/v" + std::to_string(i));
    // The wire reply: every documented field.
    const json reply = ToJson(*saved);
    EXPECT_EQ(reply["version"], i);
    EXPECT_EQ(reply["path"], saved->path);
    EXPECT_EQ(reply["expired"], json::array());
    for (const char* key : {"model", "bytes", "bytes_written", "tensors_shared"}) EXPECT_TRUE(reply.contains(key));
  }
  ASSERT_TRUE(SaveJson(reg, Body("other", 5, 0.1)).ok());

  auto list = reg.ListVersions("mnist");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->versions.size(), 3u);
  EXPECT_EQ(list->model, "mnist");
  EXPECT_FALSE(list->retention.has_value());
  for (int i = 0; i < 3; ++i) {
    const VersionInfo& info = list->versions[i];
    EXPECT_EQ(info.row.version, i + 1);
    EXPECT_EQ(info.row.prov.model, "mnist");
    EXPECT_EQ(info.row.prov.job_id, "j-20240101-000000-abcd");
    EXPECT_EQ(info.row.prov.step, (i + 1) * 10);
    EXPECT_DOUBLE_EQ(info.row.prov.created_at, 1.7e9 + i + 1);
    EXPECT_EQ(info.row.path, dir_.path() + "/checkpoints/mnist/v" + std::to_string(i + 1));
    EXPECT_TRUE(info.aliases.empty());
  }
  const json wire = ToJson(*list);
  EXPECT_EQ(wire["model"], "mnist");
  EXPECT_EQ(wire["retention"], nullptr);
  const json& versions = wire["versions"];
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
    EXPECT_EQ(v["aliases"], json::array());
    EXPECT_EQ(v["tags"], json::array());
  }
  auto models = reg.ListModels();
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].name, "mnist");
  EXPECT_EQ((*models)[0].versions, 3);
  EXPECT_EQ((*models)[0].latest, 3);
  EXPECT_GT((*models)[0].bytes_written, 3 * 160u);
  EXPECT_EQ((*models)[1].name, "other");
  const json wire_models = ToJson(*models);
  ASSERT_EQ(wire_models["models"].size(), 2u);
  EXPECT_EQ(wire_models["models"][0]["name"], "mnist");
  EXPECT_EQ(wire_models["models"][0]["versions"], 3);
  EXPECT_EQ(wire_models["models"][0]["latest"], 3);
}

TEST_F(RegistryTest, WritesOneManifestAndOnePackWithContentHashes) {
  Registry reg = Open();
  json body = Body("mnist", 7, 0.25);
  ASSERT_TRUE(SaveJson(reg, body).ok());
  const std::string vdir = dir_.path() + "/checkpoints/mnist/v1";
  auto packs = Names(PackDir());
  ASSERT_EQ(packs.size(), 1u);
  auto pack = ReadFile(PackDir() + "/" + packs[0]);
  ASSERT_TRUE(pack.ok());
  ASSERT_EQ(pack->size(), 160u);  // the tensors back to back, nothing else

  auto got = reg.GetVersion("mnist", 1);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->path, vdir);
  EXPECT_EQ(got->manifest.version, 1);
  EXPECT_EQ(got->manifest.prov.step, 7);
  EXPECT_EQ(got->manifest.prov.attempt, 2);
  EXPECT_EQ(got->manifest.prov.meta["note"], "test");
  const json m = ToJson(*got);
  EXPECT_EQ(m["format"], 2);
  EXPECT_EQ(m["path"], vdir);
  EXPECT_EQ(m["step"], 7);
  EXPECT_EQ(m["meta"]["note"], "test");
  EXPECT_EQ(m["hash_algorithm"], "murmur3-x64-128");
  ASSERT_EQ(m["tensors"].size(), 2u);
  size_t at = 0;
  for (size_t i = 0; i < 2; ++i) {
    const json& t = m["tensors"][i];
    const auto& want = body["tensors"][i]["data"].get_binary();
    EXPECT_EQ(t["name"], body["tensors"][i]["name"]);
    EXPECT_EQ(t["shape"], body["tensors"][i]["shape"]);
    EXPECT_EQ(t["hash"], HashBytes(want.data(), want.size()).Hex());
    EXPECT_EQ(t["blob"], t["hash"]);
    const auto* p = reinterpret_cast<const uint8_t*>(pack->data()) + at;
    EXPECT_EQ(std::vector<uint8_t>(p, p + want.size()), static_cast<const std::vector<uint8_t>&>(want));
    at += want.size();
  }
  // Format 1's CRC-32 stays the zlib one.
  const std::string check = "123456789";
  EXPECT_EQ(Crc32(reinterpret_cast<const uint8_t*>(check.data()), check.size()), 0xCBF43926u);
  EXPECT_EQ(Names(dir_.path() + "/checkpoints/mnist"), std::vector<std::string>{"v1"});
  EXPECT_EQ(Names(vdir), std::vector<std::string>{"manifest.json"});
}

// manifest.json's keys are an on-disk format: older data dirs and other
// readers depend on them (manifest.h), whatever the structs look like.
TEST_F(RegistryTest, ManifestOnDiskKeepsItsFormat) {
  Registry reg = Open();
  json body = Body("mnist", 7, 0.25);
  body["parent_version"] = 1;
  body["data_fingerprint"] = "fp-1";
  ASSERT_TRUE(SaveJson(reg, Body("mnist", 1, 0.5)).ok());
  ASSERT_TRUE(SaveJson(reg, body).ok());
  auto text = ReadFile(dir_.path() + "/checkpoints/mnist/v2/manifest.json");
  ASSERT_TRUE(text.ok());
  json m = json::parse(*text);
  std::vector<std::string> keys;
  for (const auto& [k, v] : m.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"attempt", "bytes", "created_at", "epoch", "format", "hash_algorithm",
                                            "job_id", "lineage", "meta", "metrics", "model", "optimizer_state",
                                            "step", "tensors", "trainer_state", "version"}));
  EXPECT_EQ(m["lineage"], json({{"parent", {{"model", "mnist"}, {"version", 1}}}, {"data_fingerprint", "fp-1"}}));
  EXPECT_EQ(m["job_id"], "j-20240101-000000-abcd");
  EXPECT_EQ(m["step"], 7);
  EXPECT_EQ(m["metrics"]["loss"], 0.25);
  // And it reads back into the same provenance the index holds.
  auto manifest = Manifest::Load(dir_.path() + "/checkpoints/mnist/v2");
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  auto list = reg.ListVersions("mnist");
  ASSERT_TRUE(list.ok());
  const Provenance& row = list->versions[1].row.prov;
  const Provenance& file = manifest->prov;
  EXPECT_EQ(file.model, row.model);
  EXPECT_EQ(file.job_id, row.job_id);
  EXPECT_EQ(file.attempt, row.attempt);
  EXPECT_EQ(file.step, row.step);
  EXPECT_EQ(file.epoch, row.epoch);
  EXPECT_EQ(file.metrics, row.metrics);
  EXPECT_EQ(file.meta, row.meta);
  EXPECT_EQ(file.parent_model, "mnist");
  EXPECT_EQ(row.parent_version, 1);
  EXPECT_EQ(file.data_fingerprint, row.data_fingerprint);
  EXPECT_DOUBLE_EQ(file.created_at, row.created_at);
}

TEST_F(RegistryTest, UnchangedLargeTensorsAreStoredOnce) {
  Registry reg = Open();
  json t1 = json::array(), t2 = json::array();
  for (int i = 0; i < 10; ++i) {
    t1.push_back(ByteTensor("layer" + std::to_string(i), Pattern(100000, i)));
    // A fine-tune: only the last layer changes.
    t2.push_back(ByteTensor("layer" + std::to_string(i), Pattern(100000, i == 9 ? 99 : i)));
  }
  auto v1 = SaveJson(reg, SaveBody("m", 1, t1));
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->tensors_shared, 0);
  auto v2 = SaveJson(reg, SaveBody("m", 2, t2));
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->tensors_shared, 9);
  EXPECT_EQ(v2->bytes, 1000000u);
  // One new blob plus a manifest of a few KiB.
  EXPECT_LT(v2->bytes_written, 110000u);
  EXPECT_GE(v2->bytes_written, 100000u);
  EXPECT_EQ(Names(PackDir()).size(), 2u);
  uint64_t pack_bytes = 0;
  for (const auto& p : Names(PackDir())) pack_bytes += fs::file_size(PackDir() + "/" + p);
  EXPECT_EQ(pack_bytes, 1100000u);  // ten layers, then the changed one

  // Both versions read back intact.
  for (int v = 1; v <= 2; ++v) {
    auto loaded = reg.Load("m", v);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    const json& want = v == 1 ? t1 : t2;
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(loaded->data[i], static_cast<const std::vector<uint8_t>&>(want[i]["data"].get_binary()));
    }
  }
  auto diff = reg.Diff("m", "v1", "m", "v2");
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_EQ(diff->changed, 1);
  EXPECT_EQ(diff->unchanged, 9);
  EXPECT_EQ(diff->added + diff->removed, 0);
  EXPECT_EQ(diff->bytes_changed, 100000u);
  EXPECT_EQ(diff->bytes_total, 1000000u);
  ASSERT_EQ(diff->tensors.size(), 10u);
  EXPECT_EQ(diff->tensors[9].tensor.name, "layer9");
  EXPECT_EQ(diff->tensors[9].change, TensorChange::kChanged);
  ASSERT_TRUE(diff->tensors[9].stats.has_value());
  EXPECT_EQ(diff->tensors[9].stats->elements, 100000u);
  EXPECT_EQ(diff->tensors[0].change, TensorChange::kUnchanged);
  EXPECT_TRUE(diff->tensors[0].shared);
  const json wire = ToJson(*diff);
  EXPECT_EQ(wire["a"], json({{"model", "m"}, {"version", 1}}));
  EXPECT_EQ(wire["summary"]["changed"], 1);
  EXPECT_EQ(wire["summary"]["unchanged"], 9);
  EXPECT_EQ(wire["tensors"][9]["name"], "layer9");
  EXPECT_EQ(wire["tensors"][9]["status"], "changed");
  EXPECT_GT(wire["tensors"][9]["stats"]["changed_fraction"].get<double>(), 0.9);
  EXPECT_FALSE(wire["tensors"][9].contains("shared"));
  EXPECT_EQ(wire["tensors"][0]["shared"], true);
  EXPECT_FALSE(wire["tensors"][0].contains("stats"));
}

TEST_F(RegistryTest, IdenticalTensorsInOneSaveShareABlob) {
  Registry reg = Open();
  auto w = Pattern(70000, 3);
  auto saved = SaveJson(reg, SaveBody("tied", 1, {ByteTensor("embed.weight", w), ByteTensor("head.weight", w)}));
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->tensors_shared, 1);
  ASSERT_EQ(Names(PackDir()).size(), 1u);
  EXPECT_EQ(fs::file_size(PackDir() + "/" + Names(PackDir())[0]), 70000u);
}

TEST_F(RegistryTest, AHashMatchAloneNeverSharesABlob) {
  Registry reg = Open();
  auto w = Pattern(70000, 4);
  ASSERT_TRUE(SaveJson(reg, SaveBody("m", 1, {ByteTensor("w", w)})).ok());
  // Make the stored blob differ from what its hash says (same size), as a
  // collision would: a new save of `w` must not reuse it.
  const std::string key = HashBytes(w.data(), w.size()).Hex();
  auto other = Pattern(70000, 5);
  ASSERT_EQ(Names(PackDir()).size(), 1u);
  ASSERT_TRUE(WriteFileAtomic(PackDir() + "/" + Names(PackDir())[0], std::string(other.begin(), other.end())).ok());
  auto saved = SaveJson(reg, SaveBody("m", 2, {ByteTensor("w", w)}));
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->tensors_shared, 0);
  auto m = reg.GetVersion("m", 2);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->manifest.tensors[0].blob, key + "-1");
  auto loaded = reg.Load("m", 2);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->data[0], w);
  // v1 now fails its checksum, and says so.
  auto broken = reg.Load("m", 1);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), StatusCode::kCorruption);
  EXPECT_NE(broken.status().message().find("fails its checksum"), std::string::npos);
}

TEST_F(RegistryTest, ReopenedRegistrySeesEarlierVersions) {
  {
    Registry reg = Open();
    ASSERT_TRUE(SaveJson(reg, Body("mnist", 1, 1)).ok());
    ASSERT_TRUE(SaveJson(reg, Body("mnist", 2, 1)).ok());
  }
  Registry reg = Open();
  auto list = reg.ListVersions("mnist");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->versions.size(), 2u);
  auto saved = SaveJson(reg, Body("mnist", 3, 1));
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->version, 3);
}

TEST_F(RegistryTest, RepeatedSaveRequestIdCommitsOneVersionAcrossReopen) {
  const std::string rid = "00112233445566778899aabbccddeeff";
  auto parse = [](const json& body) { return std::move(ParseCheckpoint(body)).value(); };
  {
    Registry reg = Open();
    auto first = reg.Save(parse(Body("mnist", 1, 1)), rid);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_FALSE(first->deduplicated);
    auto again = reg.Save(parse(Body("mnist", 1, 1)), rid);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_TRUE(again->deduplicated);
    EXPECT_EQ(again->version, first->version);
    EXPECT_EQ(again->path, first->path);
    EXPECT_EQ(again->bytes, first->bytes);
    EXPECT_EQ(again->bytes_written, 0u);
  }
  // The retry that usually follows a crash: a new Registry on the same dir.
  Registry reg = Open();
  auto after = reg.Save(parse(Body("mnist", 1, 1)), rid);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(after->deduplicated);
  EXPECT_EQ(after->version, 1);
  // One id names one save: not another model's.
  auto other_model = reg.Save(parse(Body("other", 1, 1)), rid);
  EXPECT_EQ(other_model.status().code(), StatusCode::kInvalidArgument);
  // Without an id, or with another, every save is a version.
  ASSERT_TRUE(reg.Save(parse(Body("mnist", 2, 1))).ok());
  ASSERT_TRUE(reg.Save(parse(Body("mnist", 3, 1)), "ffeeddccbbaa99887766554433221100").ok());
  auto list = reg.ListVersions("mnist");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->versions.size(), 3u);
  // A retry of a save whose version has been deleted since is refused,
  // not saved again.
  ASSERT_TRUE(reg.Delete("mnist", "v1", /*force=*/true).ok());
  auto gone = reg.Save(parse(Body("mnist", 1, 1)), rid);
  EXPECT_EQ(gone.status().code(), StatusCode::kFailedPrecondition) << gone.status().ToString();
  EXPECT_NE(gone.status().message().find("mnist v1"), std::string::npos) << gone.status().message();
}

TEST_F(RegistryTest, CorruptStoredMetricsAreAnErrorNotAnEmptyObject) {
  {
    Registry reg = Open();
    ASSERT_TRUE(SaveJson(reg, Body("mnist", 1, 0.5)).ok());
  }
  {
    auto db = sql::Db::Open(dir_.path() + "/registry.db");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE(db->Exec("UPDATE versions SET metrics_json = '{\"loss\": 0.' WHERE version = 1").ok());
  }
  auto reg = Registry::Open(dir_.path(), clock_);
  Status st = reg.ok() ? reg->ListVersions("mnist").status() : reg.status();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("metrics_json of mnist v1"), std::string::npos) << st.ToString();
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
  ASSERT_TRUE(SaveJson(reg, Body("mnist", 1, 1)).ok());
  auto got = reg.GetVersion("mnist", 4);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_NE(got.status().message().find("no version 4 (versions run up to 1"), std::string::npos);
  EXPECT_EQ(reg.ListVersions("../etc").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RegistryTest, OpenRollsBackInterruptedSaves) {
  const std::string model_dir = dir_.path() + "/checkpoints/mnist";
  {
    Registry reg = Open();
    ASSERT_TRUE(SaveJson(reg, Body("mnist", 1, 1)).ok());
  }
  // A save that died while staging, one that died after publishing its pack,
  // and one that died after its rename but before its COMMIT.
  ASSERT_TRUE(MakeDirs(model_dir + "/.staging-deadbeef").ok());
  ASSERT_TRUE(WriteFileAtomic(model_dir + "/.staging-deadbeef/tensors.bin", "partial").ok());
  const std::string stray_pack = PackDir() + "/0123456789abcdef.pack";
  ASSERT_TRUE(WriteFileAtomic(stray_pack, "unreferenced").ok());
  ASSERT_TRUE(MakeDirs(model_dir + "/v2").ok());
  ASSERT_TRUE(WriteFileAtomic(model_dir + "/v2/manifest.json", "{}").ok());

  Registry reg = Open();
  EXPECT_EQ(Names(model_dir), std::vector<std::string>{"v1"});
  EXPECT_FALSE(PathExists(stray_pack));
  auto saved = SaveJson(reg, Body("mnist", 2, 1));
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->version, 2);
  auto fsck = reg.Fsck(false);
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->ok) << ToJson(*fsck).dump(2);
}

TEST_F(RegistryTest, UnexplainedVersionFolderIsMovedAsideNotDeleted) {
  const std::string model_dir = dir_.path() + "/checkpoints/mnist";
  {
    Registry reg = Open();
    ASSERT_TRUE(SaveJson(reg, Body("mnist", 1, 1)).ok());
    ASSERT_TRUE(SaveJson(reg, Body("mnist", 2, 1)).ok());
    ASSERT_TRUE(reg.Delete("mnist", "v1", false).ok());
  }
  // v1's number was committed once: a v1 folder now is not a crashed save.
  ASSERT_TRUE(MakeDirs(model_dir + "/v1").ok());
  ASSERT_TRUE(WriteFileAtomic(model_dir + "/v1/tensors.bin", "restored by hand").ok());
  Registry reg = Open();
  auto names = Names(model_dir);
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].rfind(".orphan-v1-", 0), 0u);
  auto fsck = reg.Fsck(false);
  ASSERT_TRUE(fsck.ok());
  EXPECT_FALSE(fsck->ok);
  ASSERT_FALSE(fsck->problems.empty());
  EXPECT_EQ(fsck->problems[0].kind, "orphan_folder");
  EXPECT_EQ(ToJson(*fsck)["problems"][0]["kind"], "orphan_folder");
  auto repaired = reg.Fsck(true);
  ASSERT_TRUE(repaired.ok());
  EXPECT_TRUE(repaired->ok) << ToJson(*repaired).dump(2);
  ASSERT_FALSE(repaired->repaired.empty());
  EXPECT_EQ(repaired->repaired.back().action, "removed orphan folder");
  EXPECT_TRUE(repaired->remaining.empty());
  EXPECT_EQ(ToJson(*repaired)["repaired"].back()["action"], "removed orphan folder");
  EXPECT_EQ(Names(model_dir), std::vector<std::string>{"v2"});
}

TEST_F(RegistryTest, Format1VersionsFromBeforeDedupStayReadable) {
  // What the first release wrote: schema 1, one tensors.bin with CRC-32s.
  const std::string vdir = dir_.path() + "/checkpoints/old/v1";
  ASSERT_TRUE(MakeDirs(vdir).ok());
  auto data = Pattern(24, 9);
  ASSERT_TRUE(WriteFileAtomic(vdir + "/tensors.bin", std::string(data.begin(), data.end())).ok());
  json manifest = {{"model", "old"}, {"version", 1}, {"job_id", ""}, {"attempt", 0}, {"step", 5}, {"epoch", 0},
                   {"metrics", json::object()}, {"meta", json::object()}, {"created_at", 1.0}, {"bytes", 24},
                   {"tensors", {{{"name", "w"}, {"dtype", "float32"}, {"shape", {2, 3}}, {"offset", 0},
                                 {"bytes", 24}, {"crc32", Crc32(data.data(), data.size())}}}}};
  ASSERT_TRUE(WriteFileAtomic(vdir + "/manifest.json", manifest.dump()).ok());
  {
    auto db = sql::Db::Open(dir_.path() + "/registry.db");
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec(R"sql(
CREATE TABLE models(name TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE versions(model TEXT NOT NULL REFERENCES models(name), version INTEGER NOT NULL,
  job_id TEXT NOT NULL, attempt INTEGER NOT NULL, step INTEGER NOT NULL, epoch INTEGER NOT NULL,
  metrics_json TEXT NOT NULL, meta_json TEXT NOT NULL, bytes INTEGER NOT NULL, path TEXT NOT NULL,
  created_at REAL NOT NULL, PRIMARY KEY(model, version));
INSERT INTO models VALUES('old', 1.0);
INSERT INTO versions VALUES('old', 1, '', 0, 5, 0, '{}', '{}', 24, 'checkpoints/old/v1', 1.0);
PRAGMA user_version=1;)sql").ok());
  }
  Registry reg = Open();
  auto loaded = reg.Load("old", 1);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->data[0], data);
  EXPECT_EQ(loaded->manifest.format, 1);
  EXPECT_EQ(loaded->manifest.prov.step, 5);
  auto got = reg.GetVersion("old", 1);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  const json wire = ToJson(*got);
  EXPECT_FALSE(wire.contains("hash_algorithm"));  // format 1 recorded none
  EXPECT_EQ(wire["tensors"][0]["crc32"], Crc32(data.data(), data.size()));
  auto fsck = reg.Fsck(false);
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->ok) << ToJson(*fsck).dump(2);
  auto saved = SaveJson(reg, Body("old", 6, 1));
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->version, 2);  // the migration carried the counter over
  ASSERT_TRUE(reg.Delete("old", "v1", false).ok());
  EXPECT_FALSE(PathExists(vdir));
}

}  // namespace
}  // namespace gantry::storage
