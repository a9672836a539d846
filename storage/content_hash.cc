#include "storage/content_hash.h"

#include <cstring>

namespace gantry::storage {
namespace {

constexpr uint64_t kC1 = 0x87c37b91114253d5ULL;
constexpr uint64_t kC2 = 0x4cf5ad432745937fULL;

inline uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t Fmix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

// Little-endian load (Gantry builds on little-endian hosts only, and memcpy
// keeps unaligned input legal).
inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

std::string ContentHash::Hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    uint64_t w = i < 8 ? h1 : h2;
    int shift = 56 - 8 * (i % 8);
    auto byte = static_cast<uint8_t>(w >> shift);
    out[2 * i] = kDigits[byte >> 4];
    out[2 * i + 1] = kDigits[byte & 15];
  }
  return out;
}

void ContentHasher::Block(const uint8_t* p) {
  uint64_t k1 = Load64(p);
  uint64_t k2 = Load64(p + 8);
  k1 *= kC1;
  k1 = Rotl(k1, 31);
  k1 *= kC2;
  h1_ ^= k1;
  h1_ = Rotl(h1_, 27);
  h1_ += h2_;
  h1_ = h1_ * 5 + 0x52dce729;
  k2 *= kC2;
  k2 = Rotl(k2, 33);
  k2 *= kC1;
  h2_ ^= k2;
  h2_ = Rotl(h2_, 31);
  h2_ += h1_;
  h2_ = h2_ * 5 + 0x38495ab5;
}

void ContentHasher::Update(const uint8_t* data, size_t n) {
  length_ += n;
  if (buffered_ > 0) {
    size_t take = std::min(n, 16 - buffered_);
    std::memcpy(buffer_ + buffered_, data, take);
    buffered_ += take;
    data += take;
    n -= take;
    if (buffered_ < 16) return;
    Block(buffer_);
    buffered_ = 0;
  }
  const size_t blocks = n / 16;
  for (size_t i = 0; i < blocks; ++i) Block(data + 16 * i);
  data += 16 * blocks;
  n -= 16 * blocks;
  std::memcpy(buffer_, data, n);
  buffered_ = n;
}

ContentHash ContentHasher::Finish() const {
  uint64_t h1 = h1_;
  uint64_t h2 = h2_;
  const uint8_t* tail = buffer_;
  uint64_t k1 = 0;
  uint64_t k2 = 0;
  // The reference's fall-through switch, written as two loops.
  if (buffered_ > 8) {
    for (size_t i = buffered_; i > 8; --i) k2 ^= static_cast<uint64_t>(tail[i - 1]) << (8 * (i - 9));
    k2 *= kC2;
    k2 = Rotl(k2, 33);
    k2 *= kC1;
    h2 ^= k2;
  }
  if (buffered_ > 0) {
    for (size_t i = std::min<size_t>(buffered_, 8); i > 0; --i) {
      k1 ^= static_cast<uint64_t>(tail[i - 1]) << (8 * (i - 1));
    }
    k1 *= kC1;
    k1 = Rotl(k1, 31);
    k1 *= kC2;
    h1 ^= k1;
  }
  // The reference takes an int length; the 64-bit length is identical for
  // every input it can hash and extends it to larger tensors.
  h1 ^= length_;
  h2 ^= length_;
  h1 += h2;
  h2 += h1;
  h1 = Fmix(h1);
  h2 = Fmix(h2);
  h1 += h2;
  h2 += h1;
  return {h1, h2};
}

ContentHash HashBytes(const uint8_t* data, size_t n, uint32_t seed) {
  ContentHasher h(seed);
  h.Update(data, n);
  return h.Finish();
}

}  // namespace gantry::storage
