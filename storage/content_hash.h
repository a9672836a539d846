// ContentHash: the 128-bit content address of a tensor's bytes.
//
// The algorithm is MurmurHash3_x64_128 (Austin Appleby's public-domain
// reference, seed 0), chosen because it is fast (several GB/s on one core,
// well above disk speed), has a published verification value to pin the
// implementation (SMHasher: 0x6384BA69), and needs no new dependency. It is
// not collision resistant against an adversary, so the blob store never
// trusts a hash match alone: a candidate blob is compared byte for byte
// before it is shared (see blob_store.h). The hash is also the checksum
// `gantry ckpt fsck` verifies.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gantry::storage {

inline constexpr std::string_view kHashAlgorithm = "murmur3-x64-128";

struct ContentHash {
  uint64_t h1 = 0;
  uint64_t h2 = 0;

  // 32 lowercase hex digits, h1 then h2, each big-endian.
  std::string Hex() const;
  friend bool operator==(const ContentHash&, const ContentHash&) = default;
};

// Incremental form, for data that arrives in pieces. Feeding the same bytes
// in any split gives the same hash as HashBytes() over the whole.
class ContentHasher {
 public:
  explicit ContentHasher(uint32_t seed = 0) : h1_(seed), h2_(seed) {}
  void Update(const uint8_t* data, size_t n);
  ContentHash Finish() const;

 private:
  void Block(const uint8_t* p);
  uint64_t h1_;
  uint64_t h2_;
  uint64_t length_ = 0;
  uint8_t buffer_[16] = {};
  size_t buffered_ = 0;
};

ContentHash HashBytes(const uint8_t* data, size_t n, uint32_t seed = 0);
inline ContentHash HashBytes(std::string_view s, uint32_t seed = 0) {
  return HashBytes(reinterpret_cast<const uint8_t*>(s.data()), s.size(), seed);
}

}  // namespace gantry::storage
