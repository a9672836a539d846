// Writes a checkpoint's tensors.bin: every tensor's bytes concatenated in
// request order, each described by (offset, bytes, crc32) in the manifest.
//
// Thread safety: a pure function over its arguments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/checkpoint.h"

namespace gantry::storage {

struct TensorEntry {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;
  uint64_t bytes = 0;
  uint32_t crc32 = 0;  // boost::crc_32_type (the zlib/PNG CRC-32)

  json ToJson() const;
};

// Creates `path` (which must not exist), writes the data, fsyncs the file.
// Returns one entry per tensor.
Result<std::vector<TensorEntry>> WriteTensorFile(const std::string& path,
                                                 const std::vector<TensorData>& tensors);

// CRC-32 of `bytes`, the checksum the manifest records.
uint32_t Crc32(const uint8_t* bytes, size_t n);

}  // namespace gantry::storage
