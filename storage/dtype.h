// Tensor element types a checkpoint may hold, with their wire names
// ("float32", "bfloat16", ...) and sizes. Data is always raw little-endian.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace gantry::storage {

enum class DType {
  kFloat32,
  kFloat64,
  kFloat16,
  kBFloat16,
  kInt64,
  kInt32,
  kInt16,
  kInt8,
  kUInt8,
  kBool,
};

// nullopt for a name this service does not know.
std::optional<DType> ParseDType(std::string_view name);
std::string_view DTypeName(DType dtype);
// Bytes per element (bool is one byte, as in PyTorch).
size_t DTypeSize(DType dtype);
// "float32, float64, ..." for error messages.
std::string_view KnownDTypes();

}  // namespace gantry::storage
