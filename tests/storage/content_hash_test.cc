#include "storage/content_hash.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tests/storage/test_support.h"

namespace gantry::storage {
namespace {

// SMHasher's VerificationTest: hash keys {}, {0}, {0,1}, ... {0..254} with
// seed 256 - len, hash the concatenated results with seed 0, and read the
// first four bytes little-endian. 0x6384BA69 is MurmurHash3_x64_128's value.
TEST(ContentHashTest, MatchesTheReferenceVerificationValue) {
  uint8_t key[256];
  std::vector<uint8_t> hashes(256 * 16);
  for (int i = 0; i < 256; ++i) {
    key[i] = static_cast<uint8_t>(i);
    ContentHash h = HashBytes(key, static_cast<size_t>(i), static_cast<uint32_t>(256 - i));
    std::memcpy(&hashes[i * 16], &h.h1, 8);
    std::memcpy(&hashes[i * 16 + 8], &h.h2, 8);
  }
  ContentHash final_hash = HashBytes(hashes.data(), hashes.size(), 0);
  EXPECT_EQ(static_cast<uint32_t>(final_hash.h1), 0x6384BA69u);
}

TEST(ContentHashTest, IncrementalEqualsOneShotForAnySplit) {
  std::vector<uint8_t> data = testing::Pattern(1000, 7);
  const ContentHash whole = HashBytes(data.data(), data.size());
  for (size_t split : {0, 1, 15, 16, 17, 31, 500, 999, 1000}) {
    ContentHasher h;
    h.Update(data.data(), split);
    for (size_t i = split; i < data.size(); i += 7) h.Update(data.data() + i, std::min<size_t>(7, data.size() - i));
    EXPECT_EQ(h.Finish(), whole) << "split at " << split;
  }
}

TEST(ContentHashTest, HexIsThirtyTwoDigitsAndSensitiveToEveryByte) {
  std::vector<uint8_t> data = testing::Pattern(4096, 1);
  std::string a = HashBytes(data.data(), data.size()).Hex();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  data[4095] ^= 1;
  EXPECT_NE(HashBytes(data.data(), data.size()).Hex(), a);
  EXPECT_NE(HashBytes(data.data(), data.size() - 1).Hex(), a);
  EXPECT_EQ(HashBytes("").Hex(), "0000000000000000" "0000000000000000");  // seed 0, empty input
}

}  // namespace
}  // namespace gantry::storage
