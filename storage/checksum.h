// Checksums of stored tensors: the content hash of format 2 and the CRC-32
// of format 1 (see manifest.h), and the check that a record's size agrees
// with its dtype and shape.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"
#include "storage/manifest.h"

namespace gantry::storage {

// CRC-32 (zlib/PNG polynomial), the checksum of format-1 manifests.
uint32_t Crc32(const uint8_t* bytes, size_t n);

// product(shape) * itemsize == bytes, without overflow.
bool SizeMatchesShape(const TensorRecord& t);

// corruption naming `where` and the tensor unless `data` has the record's
// size and checksum.
Status VerifyTensor(const TensorRecord& t, std::span<const uint8_t> data, const std::string& where);

}  // namespace gantry::storage
