#include "serving/tensor.h"

#include <array>
#include <utility>

namespace gantry::serving {
namespace {

constexpr std::array<std::pair<DataType, std::string_view>, 13> kNames = {{
    {DataType::kBool, "BOOL"},   {DataType::kUint8, "UINT8"},   {DataType::kUint16, "UINT16"},
    {DataType::kUint32, "UINT32"}, {DataType::kUint64, "UINT64"}, {DataType::kInt8, "INT8"},
    {DataType::kInt16, "INT16"}, {DataType::kInt32, "INT32"},   {DataType::kInt64, "INT64"},
    {DataType::kFp16, "FP16"},   {DataType::kFp32, "FP32"},     {DataType::kFp64, "FP64"},
    {DataType::kBytes, "BYTES"},
}};

}  // namespace

std::string_view DataTypeName(DataType type) {
  for (const auto& [t, name] : kNames) {
    if (t == type) return name;
  }
  return "?";
}

std::optional<DataType> ParseDataType(std::string_view name) {
  for (const auto& [t, n] : kNames) {
    if (n == name) return t;
  }
  return std::nullopt;
}

bool IsDecodable(DataType type) {
  switch (type) {
    case DataType::kBool: case DataType::kUint8: case DataType::kInt32: case DataType::kInt64:
    case DataType::kFp32: case DataType::kFp64: case DataType::kBytes:
      return true;
    default:
      return false;
  }
}

bool IsNumeric(DataType type) { return type != DataType::kBytes; }

std::string DecodableDataTypeNames() { return "BOOL, UINT8, INT32, INT64, FP32, FP64, BYTES"; }

size_t Tensor::size() const {
  return std::visit([](const auto& v) { return v.size(); }, data);
}

std::vector<float> Tensor::ToFloat() const& {
  return std::visit(
      [](const auto& v) -> std::vector<float> {
        using E = typename std::decay_t<decltype(v)>::value_type;
        if constexpr (std::is_same_v<E, std::string>) {
          return {};
        } else if constexpr (std::is_same_v<E, float>) {
          return v;
        } else {
          std::vector<float> out;
          out.reserve(v.size());
          for (const auto& x : v) out.push_back(static_cast<float>(x));
          return out;
        }
      },
      data);
}

std::vector<float> Tensor::ToFloat() && {
  if (auto* f = std::get_if<std::vector<float>>(&data)) return std::move(*f);
  return static_cast<const Tensor&>(*this).ToFloat();
}

std::optional<uint64_t> ElementCount(const std::vector<int64_t>& shape, uint64_t limit) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d == 0) return 0;  // nothing to overflow once a dimension is empty
  }
  for (int64_t d : shape) {
    const auto ud = static_cast<uint64_t>(d);
    if (n > limit / ud) return std::nullopt;
    n *= ud;
  }
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

bool ShapeMatches(const std::vector<int64_t>& shape, const std::vector<int64_t>& pattern) {
  if (shape.size() != pattern.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) return false;
    if (pattern[i] != -1 && pattern[i] != shape[i]) return false;
  }
  return true;
}

}  // namespace gantry::serving
