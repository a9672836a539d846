#include "storage/checksum.h"

#include <boost/crc.hpp>
#include <limits>

#include "storage/content_hash.h"

namespace gantry::storage {

uint32_t Crc32(const uint8_t* bytes, size_t n) {
  boost::crc_32_type crc;
  crc.process_bytes(bytes, n);
  return crc.checksum();
}

bool SizeMatchesShape(const TensorRecord& t) {
  uint64_t n = DTypeSize(t.dtype);
  for (int64_t d : t.shape) {
    if (d < 0) return false;
    auto u = static_cast<uint64_t>(d);
    if (u != 0 && n > std::numeric_limits<uint64_t>::max() / u) return false;
    n *= u;
  }
  return n == t.bytes;
}

Status VerifyTensor(const TensorRecord& t, std::span<const uint8_t> data, const std::string& where) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption(where + ": tensor '" + t.name + "' " + why + " (run `gantry ckpt fsck`)");
  };
  if (!SizeMatchesShape(t)) return bad("has a size that does not match its dtype and shape");
  if (data.size() != t.bytes) {
    return bad("has " + std::to_string(data.size()) + " bytes, expected " + std::to_string(t.bytes));
  }
  if (!t.hash.empty()) {
    std::string got = HashBytes(data.data(), data.size()).Hex();
    if (got != t.hash) return bad("fails its checksum (content hash " + got + ", expected " + t.hash + ")");
  } else if (t.crc32) {
    uint32_t got = Crc32(data.data(), data.size());
    if (got != *t.crc32) return bad("fails its CRC-32 checksum");
  } else {
    return bad("has no checksum");
  }
  return Status::Ok();
}

}  // namespace gantry::storage
