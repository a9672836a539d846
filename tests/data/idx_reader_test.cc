#include "data/idx_reader.h"

#include <gtest/gtest.h>

#include "tests/support/data_test_util.h"

namespace gantry::data {
namespace {

using data_testing::IdxHeader;
using data_testing::PathIn;
using data_testing::TempDir;
using data_testing::WriteBytes;
using data_testing::WriteIdx;

std::vector<uint8_t> Iota(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i % 251);
  return v;
}

class IdxReaderTest : public ::testing::TestWithParam<bool> {};

TEST_P(IdxReaderTest, ReadsImagesAndLabels) {
  const bool gzip = GetParam();
  TempDir dir;
  WriteIdx(PathIn(dir, "img"), {3, 4, 5}, Iota(60), gzip);
  auto a = ReadIdx(PathIn(dir, "img"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->dims, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(a->data, Iota(60));

  WriteIdx(PathIn(dir, "lab"), {3}, {0, 9, 4}, gzip);
  auto ds = LoadIdxDataset(PathIn(dir, "img"), PathIn(dir, "lab"));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->images.sizes(), (std::vector<int64_t>{3, 1, 4, 5}));
  EXPECT_EQ(ds->images.scalar_type(), torch::kFloat32);
  EXPECT_EQ(ds->labels.scalar_type(), torch::kInt64);
  EXPECT_EQ(ds->labels[1].item<int64_t>(), 9);
  // Pixel 7 of image 0 holds 7: normalised as (7/255 - mean) / std.
  EXPECT_NEAR(ds->images.view({-1})[7].item<double>(), (7 / 255.0 - kPixelMean) / kPixelStd, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(PlainAndGzip, IdxReaderTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "gzip" : "plain"; });

TEST(IdxReader, LimitKeepsFirstSamples) {
  TempDir dir;
  WriteIdx(PathIn(dir, "img.gz"), {5, 2, 2}, Iota(20), true);
  WriteIdx(PathIn(dir, "lab.gz"), {5}, {1, 2, 3, 4, 5}, true);
  auto ds = LoadIdxDataset(PathIn(dir, "img.gz"), PathIn(dir, "lab.gz"), 2);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->labels[1].item<int64_t>(), 2);
  auto all = LoadIdxDataset(PathIn(dir, "img.gz"), PathIn(dir, "lab.gz"), 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 5);
}

// Expects ReadIdx(path) to fail with a message naming the file and `reason`.
void ExpectRefused(const std::string& path, const std::string& reason) {
  auto a = ReadIdx(path);
  ASSERT_FALSE(a.ok()) << path;
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find(path), std::string::npos) << a.status().message();
  EXPECT_NE(a.status().message().find(reason), std::string::npos) << a.status().message();
}

TEST(IdxReader, RefusesMalformedFiles) {
  TempDir dir;
  ExpectRefused(PathIn(dir, "missing.gz"), "cannot open");

  WriteBytes(PathIn(dir, "short"), std::string("\0\0", 2), false);
  ExpectRefused(PathIn(dir, "short"), "too short");

  WriteBytes(PathIn(dir, "magic"), "PK\x03\x04 not an idx file", false);
  ExpectRefused(PathIn(dir, "magic"), "bad magic");

  std::string floats = IdxHeader({1});
  floats[2] = 0x0d;
  WriteBytes(PathIn(dir, "floats"), floats + "abcd", false);
  ExpectRefused(PathIn(dir, "floats"), "element type 0x0d");

  std::string nodims = IdxHeader({});
  WriteBytes(PathIn(dir, "nodims"), nodims, false);
  ExpectRefused(PathIn(dir, "nodims"), "number of dimensions 0");

  WriteBytes(PathIn(dir, "cut-header"), IdxHeader({10, 28, 28}).substr(0, 9), false);
  ExpectRefused(PathIn(dir, "cut-header"), "header cut short");

  WriteIdx(PathIn(dir, "missing-bytes.gz"), {2, 3, 3}, Iota(17), true);
  ExpectRefused(PathIn(dir, "missing-bytes.gz"), "2x3x3 = 18 bytes of data but the file holds 17");

  WriteIdx(PathIn(dir, "extra-bytes"), {2}, Iota(3), false);
  ExpectRefused(PathIn(dir, "extra-bytes"), "holds 3");

  // A huge declared size must be refused from the header, not allocated.
  WriteIdx(PathIn(dir, "huge"), {0xffffffffu, 0xffffffffu}, Iota(4), false);
  ExpectRefused(PathIn(dir, "huge"), "bytes of data but the file holds 4");

  // A gzip stream cut in the middle.
  WriteIdx(PathIn(dir, "full.gz"), {100, 28, 28}, Iota(78400), true);
  auto whole = std::filesystem::file_size(PathIn(dir, "full.gz"));
  std::filesystem::copy_file(PathIn(dir, "full.gz"), PathIn(dir, "truncated.gz"));
  std::filesystem::resize_file(PathIn(dir, "truncated.gz"), whole / 2);
  ExpectRefused(PathIn(dir, "truncated.gz"), "gzip");
}

TEST(IdxReader, RefusesMismatchedPairs) {
  TempDir dir;
  WriteIdx(PathIn(dir, "img"), {3, 2, 2}, Iota(12), false);
  WriteIdx(PathIn(dir, "lab2"), {2}, {1, 2}, false);
  auto ds = LoadIdxDataset(PathIn(dir, "img"), PathIn(dir, "lab2"));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("holds 2 labels but"), std::string::npos) << ds.status().message();

  WriteIdx(PathIn(dir, "lab-range"), {3}, {1, 10, 2}, false);
  ds = LoadIdxDataset(PathIn(dir, "img"), PathIn(dir, "lab-range"));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("label 10 at index 1"), std::string::npos) << ds.status().message();

  // Swapped files: images where labels belong.
  ds = LoadIdxDataset(PathIn(dir, "lab2"), PathIn(dir, "img"));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("images must have 3 dimensions"), std::string::npos);
}

}  // namespace
}  // namespace gantry::data
