// FastChecksum: the 64-bit checksum of tensor bytes handed to storage
// through its inbox (the checkpoint data plane, docs/storage.md). Worker
// and storage compute it on either side of a file, so it lives here once.
//
// Four independent lanes of the XXH64 round (multiply, rotate, multiply) over
// 32-byte blocks, folded with the length: several GB/s on one core, so it
// costs little next to the disk. It detects torn, truncated or mixed-up
// files, not an adversary (storage hashes every tensor again with its own
// content hash before sharing bytes; blob_store.h).
//
// Thread safety: a pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gantry {

inline uint64_t FastChecksum(const uint8_t* p, size_t n) {
  constexpr uint64_t kP1 = 0x9E3779B185EBCA87ULL, kP2 = 0xC2B2AE3D27D4EB4FULL, kP3 = 0x165667B19E3779F9ULL;
  auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  auto round = [&](uint64_t acc, uint64_t w) { return rotl(acc + w * kP2, 31) * kP1; };
  uint64_t a[4] = {kP1 + kP2, kP2, 0, 0 - kP1};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, 32);
    for (int k = 0; k < 4; ++k) a[k] = round(a[k], w[k]);
  }
  uint64_t h = rotl(a[0], 1) + rotl(a[1], 7) + rotl(a[2], 12) + rotl(a[3], 18) + static_cast<uint64_t>(n) * kP3;
  for (; i < n; ++i) h = rotl(h ^ (p[i] * kP1), 11) * kP2;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  return h;
}

}  // namespace gantry
