#include "data/shard_dataset.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/data_test_util.h"

namespace gantry::data {
namespace {

using data_testing::Contains;
using data_testing::PathIn;
using data_testing::TempDir;
using data_testing::WriteFile;
using data_testing::WriteIdxPair;

std::vector<std::string> Names(const ShardListing& l) {
  std::vector<std::string> out;
  for (const auto& s : l.shards) out.push_back(s.name);
  return out;
}

std::string AllNotes(const std::vector<std::string>& notes) {
  std::string s;
  for (const auto& n : notes) s += n + "\n";
  return s;
}

TEST(ShardDataset, ListsShardsInNameOrderAndIgnoresPartialFiles) {
  TempDir dir;
  WriteFile(PathIn(dir, "part-0002.csv"), "x,label\n1,0\n");
  WriteFile(PathIn(dir, "part-0001.csv.gz"), "x,label\n1,0\n", true);
  WriteFile(PathIn(dir, "part-0003.csv.tmp"), "x,lab");    // being written
  WriteFile(PathIn(dir, ".part-0004.csv"), "x,label\n");   // hidden, being written
  WriteFile(PathIn(dir, "_SUCCESS"), "");
  WriteFile(PathIn(dir, "README.md"), "about the data");
  WriteFile(PathIn(dir, "held-out.csv"), "x,label\n1,0\n");
  std::filesystem::create_directory(PathIn(dir, "part-0000.csv"));  // a directory, not a shard
  auto l = ListShards(dir.path(), {"held-out.csv"});
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(Names(*l), (std::vector<std::string>{"part-0001.csv.gz", "part-0002.csv"}));
  EXPECT_EQ(l->shards[0].kind, Shard::Kind::kCsv);
  EXPECT_EQ(l->notes.size(), 1u) << AllNotes(l->notes);
  EXPECT_TRUE(Contains(AllNotes(l->notes), "skipped README.md (not a shard")) << AllNotes(l->notes);
}

TEST(ShardDataset, LoadsCsvShardsInOrderAndLimitStopsEarly) {
  TempDir dir;
  WriteFile(PathIn(dir, "b.csv"), "x,y,label\n5,6,2\n");
  WriteFile(PathIn(dir, "a.csv"), "x,y,label\n1,2,0\n3,4,1\n");
  WriteFile(PathIn(dir, "c.csv"), "x,y,label\n7,8,3\n");
  auto d = LoadShards(dir.path(), {});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->kind, Shard::Kind::kCsv);
  EXPECT_TRUE(d->labels.equal(torch::tensor({0, 1, 2, 3}, torch::kInt64))) << d->labels;
  EXPECT_TRUE(d->features.equal(torch::tensor({{1.0f, 2.0f}, {3.0f, 4.0f}, {5.0f, 6.0f}, {7.0f, 8.0f}})));
  EXPECT_EQ(d->feature_names, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(d->files, (std::vector<std::string>{"a.csv", "b.csv", "c.csv"}));
  EXPECT_EQ(d->max_label, 3);

  // The limit cuts inside b.csv; c.csv is not even read.
  WriteFile(PathIn(dir, "c.csv"), "garbage");
  auto limited = LoadShards(dir.path(), {"label", 3, {}});
  ASSERT_TRUE(limited.ok()) << limited.status().ToString();
  EXPECT_TRUE(limited->labels.equal(torch::tensor({0, 1, 2}, torch::kInt64)));
  EXPECT_EQ(limited->files, (std::vector<std::string>{"a.csv", "b.csv"}));
}

TEST(ShardDataset, LoadsIdxPairsAndSkipsAnIncompletePair) {
  TempDir dir;
  WriteIdxPair(dir, "part-b", {3});
  WriteIdxPair(dir, "part-a", {1, 2});
  WriteIdxPair(dir, "part-c", {4});
  std::filesystem::remove(PathIn(dir, "part-c-labels-idx1-ubyte.gz"));  // still on its way
  auto d = LoadShards(dir.path(), {});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->kind, Shard::Kind::kIdx);
  EXPECT_EQ(d->features.sizes(), (std::vector<int64_t>{3, 1, 2, 2}));
  EXPECT_TRUE(d->labels.equal(torch::tensor({1, 2, 3}, torch::kInt64))) << d->labels;
  EXPECT_EQ(d->files, (std::vector<std::string>{"part-a-images-idx3-ubyte.gz", "part-a-labels-idx1-ubyte.gz",
                                                 "part-b-images-idx3-ubyte.gz", "part-b-labels-idx1-ubyte.gz"}));
  EXPECT_TRUE(Contains(AllNotes(d->notes), "skipped shard part-c: part-c-images-idx3-ubyte.gz has no labels file yet"))
      << AllNotes(d->notes);
}

// Expects LoadShards(dir) to fail with a message holding every one of `parts`.
void ExpectRefused(const TempDir& dir, const std::vector<std::string>& parts) {
  auto d = LoadShards(dir.path(), {});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  for (const auto& p : parts) EXPECT_TRUE(Contains(d.status().message(), p)) << d.status().message();
}

TEST(ShardDataset, RefusesEmptyMixedAndInconsistentDirectories) {
  {
    TempDir dir;
    WriteFile(PathIn(dir, "part-1.csv.tmp"), "x,label\n1,0\n");
    ExpectRefused(dir, {dir.path(), "no complete shard yet"});
  }
  {
    TempDir dir;
    WriteFile(PathIn(dir, "a.csv"), "x,label\n1,0\n");
    WriteIdxPair(dir, "b", {1});
    ExpectRefused(dir, {"mixes CSV shards (a.csv) and IDX shards (b)", "keep one kind per directory"});
  }
  {
    TempDir dir;
    WriteFile(PathIn(dir, "a.csv"), "x,y,label\n1,2,0\n");
    WriteFile(PathIn(dir, "b.csv"), "x,z,label\n1,2,0\n");
    ExpectRefused(dir, {PathIn(dir, "b.csv"), "feature columns [x,z] differ from the first shard a.csv [x,y]"});
  }
  {
    TempDir dir;
    WriteIdxPair(dir, "a", {1});
    data_testing::WriteIdx(PathIn(dir, "b-images-idx3-ubyte.gz"), {1, 3, 3}, std::vector<uint8_t>(9, 0));
    data_testing::WriteIdx(PathIn(dir, "b-labels-idx1-ubyte.gz"), {1}, {0});
    ExpectRefused(dir, {"shard b: images are 3x3 but the first shard a has 2x2"});
  }
  {
    TempDir dir;
    WriteIdxPair(dir, "a", {1});
    data_testing::WriteIdx(PathIn(dir, "a-labels-idx1-ubyte"), {1}, {1}, /*gzip=*/false);
    ExpectRefused(dir, {"shard a has two labels files", "keep one"});
  }
  {
    TempDir dir;
    WriteFile(PathIn(dir, "a.csv"), "x,label\n1,0\n");
    WriteFile(PathIn(dir, "b.csv"), "x,label\n1,0\n2,zebra\n");
    ExpectRefused(dir, {PathIn(dir, "b.csv") + " line 3: column 'label' (column 2) is 'zebra'"});
  }
}

}  // namespace
}  // namespace gantry::data
