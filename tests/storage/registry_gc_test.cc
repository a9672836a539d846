// Two-phase garbage collection, crash recovery of GC, and fsck.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/fs.h"
#include "storage/collector.h"
#include "storage/registry.h"
#include "storage/storage_json.h"
#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

using testing::ByteTensor;
using testing::Pattern;
using testing::SaveBody;
using testing::SaveJson;
namespace fs = std::filesystem;

size_t CountFiles(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) ++n;
  return n;
}

class RegistryGcTest : public testing::RegistryTestBase {
 protected:
  // Version i: a frozen tensor shared by all, and one of its own.
  void Save(Registry& reg, int i) {
    auto r = SaveJson(reg, SaveBody("m", i, {ByteTensor("frozen", Pattern(80000, 1)),
                                             ByteTensor("head", Pattern(80000, 100 + i)),
                                             ByteTensor("bias", Pattern(16, i))}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  uint64_t PackBytes() const {
    uint64_t n = 0;
    for (const auto& e : fs::directory_iterator(PackDir())) n += e.file_size();
    return n;
  }
  // Where blob `key` lives, from a second handle on the index.
  BlobRow Locate(const std::string& key) {
    auto index = Index::Open(dir_.path() + "/registry.db");
    EXPECT_TRUE(index.ok());
    auto blob = index->GetBlob(key);
    EXPECT_TRUE(blob.ok() && blob->has_value());
    return **blob;
  }
};

TEST_F(RegistryGcTest, SharedBlobsLiveWhileAnyVersionUsesThemAndGcCompacts) {
  Registry reg = Open();
  for (int i = 1; i <= 4; ++i) Save(reg, i);
  EXPECT_EQ(CountFiles(PackDir()), 4u);  // one pack per save
  EXPECT_EQ(PackBytes(), 160016u + 3 * 80016u);
  ASSERT_TRUE(reg.SetRetention("m", RetentionPolicy{1, 0, "", "min"}).ok());
  // v2 and v3 took their packs with them; v1's stays for the frozen tensor.
  EXPECT_EQ(CountFiles(PackDir()), 2u);
  auto gc = reg.CollectGarbage("", false);
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_EQ(gc->packs_compacted, 1);
  EXPECT_FALSE(gc->dry_run);
  EXPECT_GT(gc->bytes_freed, 0u);
  EXPECT_EQ(ToJson(*gc)["packs_compacted"], 1);
  EXPECT_EQ(CountFiles(PackDir()), 2u);
  EXPECT_EQ(PackBytes(), 80000u + 80016u);  // nothing dead is left
  auto loaded = reg.Load("m", 4);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->data[0], Pattern(80000, 1));
  EXPECT_EQ(loaded->data[1], Pattern(80000, 104));
  auto fsck = reg.Fsck(false);
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->ok) << ToJson(*fsck).dump(2);
  EXPECT_EQ(fsck->blobs_checked, 3u);
  EXPECT_EQ(fsck->packs_checked, 2u);
  EXPECT_EQ(ToJson(*fsck)["blobs_checked"], 3);
}

// A crash between GC's two phases: the index already forgot the version,
// the files are still there. Nothing points at missing data, and the next
// open removes the files.
TEST_F(RegistryGcTest, CrashBetweenPhasesIsFinishedOnOpen) {
  {
    Registry reg = Open();
    for (int i = 1; i <= 3; ++i) Save(reg, i);
  }
  {
    // Phase 1 only, through a second handle on the same index.
    auto index = Index::Open(dir_.path() + "/registry.db");
    ASSERT_TRUE(index.ok());
    BlobStore blobs(dir_.path());
    Collector gc(dir_.path(), *index, blobs, clock_);
    sql::Transaction tx(index->db());
    ASSERT_TRUE(tx.begin_status().ok());
    auto v1 = index->GetVersion("m", 1);
    ASSERT_TRUE(v1.ok() && v1->has_value());
    ASSERT_TRUE(gc.UnlinkVersion(**v1).ok());
    int64_t dead = 0;
    ASSERT_TRUE(gc.UnlinkUnreferencedBlobs(&dead, nullptr).ok());
    EXPECT_EQ(dead, 2);  // v1's head and bias; frozen is still used
    ASSERT_TRUE(tx.Commit().ok());
  }
  EXPECT_TRUE(PathExists(dir_.path() + "/checkpoints/m/v1"));
  Registry reg = Open();
  EXPECT_FALSE(PathExists(dir_.path() + "/checkpoints/m/v1"));
  EXPECT_EQ(CountFiles(PackDir()), 3u);  // v1's pack still holds the frozen tensor
  auto fsck = reg.Fsck(false);
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->ok) << ToJson(*fsck).dump(2);
  EXPECT_EQ(fsck->versions_checked, 2u);
}

TEST_F(RegistryGcTest, FsckFindsDamageAndRepairDropsOnlyDamagedVersions) {
  Registry reg = Open();
  for (int i = 1; i <= 3; ++i) Save(reg, i);
  auto v2 = reg.GetVersion("m", 2);
  ASSERT_TRUE(v2.ok());
  // Flip one byte in v2's own blob, and cut v3's pack short.
  const BlobRow head = Locate(v2->manifest.tensors[1].blob);
  const std::string pack2 = PackDir() + "/" + head.pack;
  auto bytes = ReadFile(pack2);
  ASSERT_TRUE(bytes.ok());
  (*bytes)[head.offset + 500] ^= 0x40;
  ASSERT_TRUE(WriteFileAtomic(pack2, *bytes).ok());
  auto v3 = reg.GetVersion("m", 3);
  ASSERT_TRUE(v3.ok());
  const std::string pack3 = PackDir() + "/" + Locate(v3->manifest.tensors[1].blob).pack;
  fs::resize_file(pack3, 1000);

  auto fsck = reg.Fsck(false);
  ASSERT_TRUE(fsck.ok());
  EXPECT_FALSE(fsck->ok);
  std::set<std::string> kinds;
  for (const auto& p : fsck->problems) kinds.insert(p.kind);
  EXPECT_TRUE(kinds.count("bad_blob")) << ToJson(*fsck).dump(2);
  EXPECT_TRUE(kinds.count("bad_pack")) << ToJson(*fsck).dump(2);
  std::set<std::string> wire_kinds;
  const json wire = ToJson(*fsck);  // named: a range-for over a temporary's member dangles
  for (const auto& p : wire["problems"]) wire_kinds.insert(p["kind"].get<std::string>());
  EXPECT_EQ(wire_kinds, kinds);
  EXPECT_EQ(reg.Load("m", 2).status().code(), StatusCode::kCorruption);

  auto repaired = reg.Fsck(true);
  ASSERT_TRUE(repaired.ok());
  EXPECT_TRUE(repaired->ok) << ToJson(*repaired).dump(2);
  auto list = reg.ListVersions("m");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->versions.size(), 1u);
  EXPECT_EQ(list->versions[0].row.version, 1);
  std::set<int64_t> dropped;
  for (const auto& r : repaired->repaired) {
    if (r.action == "dropped damaged version") dropped.insert(r.version);
  }
  EXPECT_EQ(dropped, (std::set<int64_t>{2, 3}));
  EXPECT_TRUE(reg.Load("m", 1).ok());
  EXPECT_FALSE(PathExists(pack2));
  EXPECT_FALSE(PathExists(pack3));
  EXPECT_EQ(CountFiles(PackDir()), 1u);
}

TEST_F(RegistryGcTest, FsckReportsMissingFilesAndGcRemovesDebris) {
  Registry reg = Open();
  Save(reg, 1);
  Save(reg, 2);
  fs::remove_all(dir_.path() + "/checkpoints/m/v2");
  const std::string stray = PackDir() + "/ffffffffffffffff.pack";
  ASSERT_TRUE(WriteFileAtomic(stray, "x").ok());
  auto fsck = reg.Fsck(false);
  ASSERT_TRUE(fsck.ok());
  std::set<std::string> kinds;
  for (const auto& p : fsck->problems) kinds.insert(p.kind);
  EXPECT_EQ(kinds, (std::set<std::string>{"missing_version", "unreferenced"})) << ToJson(*fsck).dump(2);
  for (const auto& p : fsck->problems) {
    if (p.kind != "missing_version") continue;
    EXPECT_EQ(p.model, "m");
    EXPECT_EQ(p.version, 2);
  }

  auto dry = reg.CollectGarbage("", true);
  ASSERT_TRUE(dry.ok());
  EXPECT_TRUE(PathExists(stray));
  EXPECT_TRUE(dry->dry_run);
  EXPECT_EQ(dry->swept.removed, std::vector<std::string>{"checkpoints/.packs/ffffffffffffffff.pack"});
  EXPECT_EQ(ToJson(*dry)["swept"]["removed"][0], "checkpoints/.packs/ffffffffffffffff.pack");
  auto gc = reg.CollectGarbage("", false);
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_FALSE(PathExists(stray));
  // gc never drops a version whose files are missing: that is fsck --repair's call.
  EXPECT_EQ(reg.ListVersions("m").value().versions.size(), 2u);
  ASSERT_TRUE(reg.Fsck(true).ok());
  EXPECT_TRUE(reg.Fsck(false).value().ok);
}

}  // namespace
}  // namespace gantry::storage
