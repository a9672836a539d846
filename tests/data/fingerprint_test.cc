#include "data/fingerprint.h"

#include <gtest/gtest.h>

#include "tests/support/data_test_util.h"
#include "data/sha256.h"

namespace gantry::data {
namespace {

using data_testing::Contains;
using data_testing::PathIn;
using data_testing::TempDir;
using data_testing::WriteFile;

TEST(Sha256, MatchesPublishedVectors) {
  EXPECT_EQ(Sha256::HexOf(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::HexOf("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::HexOf("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // One million 'a', fed in uneven pieces: block boundaries must not matter.
  Sha256 h;
  std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    h.Update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(Sha256::Hex(h.Finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

std::string FingerprintOf(const TempDir& dir, const std::vector<std::string>& names) {
  DataFingerprint fp;
  fp.AddSetting("label_column", "label");
  for (const auto& n : names) {
    Status st = fp.AddFile("train", n, PathIn(dir, n));
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  return fp.Hex();
}

TEST(DataFingerprint, StableForSameDataChangesWithContentOrNames) {
  TempDir a, b;
  for (const TempDir* d : {&a, &b}) {
    WriteFile(PathIn(*d, "part-1.csv"), "x,label\n1,0\n");
    WriteFile(PathIn(*d, "part-2.csv"), "x,label\n2,1\n");
  }
  const std::string base = FingerprintOf(a, {"part-1.csv", "part-2.csv"});
  EXPECT_EQ(base.size(), 64u);
  EXPECT_EQ(base.find_first_not_of("0123456789abcdef"), std::string::npos) << base;
  // Same names and bytes in another folder (another host's mount): same value.
  EXPECT_EQ(FingerprintOf(b, {"part-1.csv", "part-2.csv"}), base);
  EXPECT_EQ(FingerprintOf(a, {"part-1.csv", "part-2.csv"}), base);

  // One byte changed, same size: different.
  WriteFile(PathIn(b, "part-2.csv"), "x,label\n3,1\n");
  EXPECT_NE(FingerprintOf(b, {"part-1.csv", "part-2.csv"}), base);
  // Order, names, roles and settings are part of it too.
  EXPECT_NE(FingerprintOf(a, {"part-2.csv", "part-1.csv"}), base);
  EXPECT_NE(FingerprintOf(a, {"part-1.csv"}), base);
  DataFingerprint other_role;
  ASSERT_TRUE(other_role.AddFile("test", "part-1.csv", PathIn(a, "part-1.csv")).ok());
  DataFingerprint train_role;
  ASSERT_TRUE(train_role.AddFile("train", "part-1.csv", PathIn(a, "part-1.csv")).ok());
  EXPECT_NE(other_role.Hex(), train_role.Hex());
  EXPECT_EQ(train_role.files().at(0).size, 12);
  EXPECT_EQ(train_role.files().at(0).sha256, Sha256::HexOf("x,label\n1,0\n"));
  EXPECT_TRUE(Contains(train_role.manifest(), "file\ttrain\tpart-1.csv\t12\t")) << train_role.manifest();
}

TEST(DataFingerprint, MissingFileIsAnError) {
  TempDir dir;
  DataFingerprint fp;
  Status st = fp.AddFile("train", "gone.csv", PathIn(dir, "gone.csv"));
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Contains(st.message(), PathIn(dir, "gone.csv"))) << st.message();
}

}  // namespace
}  // namespace gantry::data
