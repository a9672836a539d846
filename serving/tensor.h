// Typed tensors of the Open Inference Protocol (KServe v2): datatypes, decoded
// data, and the model's declared tensor specs.
//
// Datatype names are the v2 ones (BOOL, UINT8..UINT64, INT8..INT64, FP16,
// FP32, FP64, BYTES). All are recognised; these are decoded: BOOL, UINT8,
// INT32, INT64, FP32, FP64 and BYTES. A numeric model input accepts any
// decoded numeric datatype and is fed to the model as FP32 (ToFloat()).
//
// Thread safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace gantry::serving {

enum class DataType {
  kBool, kUint8, kUint16, kUint32, kUint64, kInt8, kInt16, kInt32, kInt64,
  kFp16, kFp32, kFp64, kBytes,
};

std::string_view DataTypeName(DataType type);
std::optional<DataType> ParseDataType(std::string_view name);
// Whether the codec decodes this datatype (see the header comment).
bool IsDecodable(DataType type);
bool IsNumeric(DataType type);  // everything but BYTES
// "BOOL, UINT8, INT32, INT64, FP32, FP64, BYTES", for messages.
std::string DecodableDataTypeNames();

// Decoded elements, flat and row-major. BOOL and UINT8 share uint8_t.
using TensorData = std::variant<std::vector<float>, std::vector<double>, std::vector<int32_t>,
                                std::vector<int64_t>, std::vector<uint8_t>,
                                std::vector<std::string>>;

// A request or response parameter value (v2 allows bool, number, string).
using Parameter = std::variant<bool, int64_t, double, std::string>;
using Parameters = std::map<std::string, Parameter>;

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  DataType datatype = DataType::kFp32;
  TensorData data = std::vector<float>{};
  Parameters parameters;

  // Number of elements in `data`.
  size_t size() const;
  // The elements as FP32 (numeric tensors only; BYTES gives an empty vector).
  std::vector<float> ToFloat() const&;
  // The same, moving FP32 data out instead of copying it.
  std::vector<float> ToFloat() &&;
};

// Product of the dimensions; nullopt when a dimension is negative or the
// product passes `limit`.
std::optional<uint64_t> ElementCount(const std::vector<int64_t>& shape, uint64_t limit);
// "[-1,1,28,28]".
std::string ShapeString(const std::vector<int64_t>& shape);

// A tensor a model declares. `shapes` lists the accepted shapes, the first is
// the canonical one reported in metadata; -1 matches any size (the batch
// dimension, first).
struct TensorSpec {
  std::string name;
  DataType datatype = DataType::kFp32;
  std::vector<std::vector<int64_t>> shapes;
};

// Whether `shape` matches `pattern` (-1 matches any non-negative size).
bool ShapeMatches(const std::vector<int64_t>& shape, const std::vector<int64_t>& pattern);

// GET /v2/models/{name}[/versions/{v}].
struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;  // "gantry_builtin", "pytorch_torchscript", ...
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

}  // namespace gantry::serving
