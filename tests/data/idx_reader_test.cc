#include "worker/idx_reader.h"

#include <gtest/gtest.h>

#include "tests/worker/test_util.h"

namespace gantry::worker {
namespace {

using testing::IdxHeader;
using testing::TempDir;
using testing::WriteBytes;
using testing::WriteIdx;

std::vector<uint8_t> Iota(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i % 251);
  return v;
}

class IdxReaderTest : public ::testing::TestWithParam<bool> {};

TEST_P(IdxReaderTest, ReadsImagesAndLabels) {
  const bool gzip = GetParam();
  TempDir dir;
  WriteIdx(dir.File("img"), {3, 4, 5}, Iota(60), gzip);
  auto a = ReadIdx(dir.File("img"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->dims, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(a->data, Iota(60));

  WriteIdx(dir.File("lab"), {3}, {0, 9, 4}, gzip);
  auto ds = LoadIdxDataset(dir.File("img"), dir.File("lab"));
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
  WriteIdx(dir.File("img.gz"), {5, 2, 2}, Iota(20), true);
  WriteIdx(dir.File("lab.gz"), {5}, {1, 2, 3, 4, 5}, true);
  auto ds = LoadIdxDataset(dir.File("img.gz"), dir.File("lab.gz"), 2);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->labels[1].item<int64_t>(), 2);
  auto all = LoadIdxDataset(dir.File("img.gz"), dir.File("lab.gz"), 100);
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
  ExpectRefused(dir.File("missing.gz"), "cannot open");

  WriteBytes(dir.File("short"), std::string("\0\0", 2), false);
  ExpectRefused(dir.File("short"), "too short");

  WriteBytes(dir.File("magic"), "PK\x03\x04 not an idx file", false);
  ExpectRefused(dir.File("magic"), "bad magic");

  std::string floats = IdxHeader({1});
  floats[2] = 0x0d;
  WriteBytes(dir.File("floats"), floats + "abcd", false);
  ExpectRefused(dir.File("floats"), "element type 0x0d");

  std::string nodims = IdxHeader({});
  WriteBytes(dir.File("nodims"), nodims, false);
  ExpectRefused(dir.File("nodims"), "number of dimensions 0");

  WriteBytes(dir.File("cut-header"), IdxHeader({10, 28, 28}).substr(0, 9), false);
  ExpectRefused(dir.File("cut-header"), "header cut short");

  WriteIdx(dir.File("missing-bytes.gz"), {2, 3, 3}, Iota(17), true);
  ExpectRefused(dir.File("missing-bytes.gz"), "2x3x3 = 18 bytes of data but the file holds 17");

  WriteIdx(dir.File("extra-bytes"), {2}, Iota(3), false);
  ExpectRefused(dir.File("extra-bytes"), "holds 3");

  // A huge declared size must be refused from the header, not allocated.
  WriteIdx(dir.File("huge"), {0xffffffffu, 0xffffffffu}, Iota(4), false);
  ExpectRefused(dir.File("huge"), "bytes of data but the file holds 4");

  // A gzip stream cut in the middle.
  WriteIdx(dir.File("full.gz"), {100, 28, 28}, Iota(78400), true);
  auto whole = std::filesystem::file_size(dir.File("full.gz"));
  std::filesystem::copy_file(dir.File("full.gz"), dir.File("truncated.gz"));
  std::filesystem::resize_file(dir.File("truncated.gz"), whole / 2);
  ExpectRefused(dir.File("truncated.gz"), "gzip");
}

TEST(IdxReader, RefusesMismatchedPairs) {
  TempDir dir;
  WriteIdx(dir.File("img"), {3, 2, 2}, Iota(12), false);
  WriteIdx(dir.File("lab2"), {2}, {1, 2}, false);
  auto ds = LoadIdxDataset(dir.File("img"), dir.File("lab2"));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("holds 2 labels but"), std::string::npos) << ds.status().message();

  WriteIdx(dir.File("lab-range"), {3}, {1, 10, 2}, false);
  ds = LoadIdxDataset(dir.File("img"), dir.File("lab-range"));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("label 10 at index 1"), std::string::npos) << ds.status().message();

  // Swapped files: images where labels belong.
  ds = LoadIdxDataset(dir.File("lab2"), dir.File("img"));
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("images must have 3 dimensions"), std::string::npos);
}

}  // namespace
}  // namespace gantry::worker
