// Sha256: the SHA-256 digest (FIPS 180-4), fed in pieces.
//
// Used for the data fingerprint (fingerprint.h), which needs a digest that is
// collision resistant and identical on every platform, without adding a
// crypto library to Gantry for ~100 lines of arithmetic.
//
// Thread safety: an object is used by one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gantry::data {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256();
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Pads and returns the digest; the object must not be updated afterwards.
  Digest Finish();

  // 64 lowercase hex digits.
  static std::string Hex(const Digest& d);
  static std::string HexOf(std::string_view s);

 private:
  void Block(const uint8_t* p);

  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes fed so far
};

}  // namespace gantry::data
