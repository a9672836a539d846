#include "serving/infer_codec.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

namespace gantry::serving {
namespace {

using json = nlohmann::json;

ApiError Bad(ErrorKind kind, const std::string& field, const std::string& what) {
  return ApiError::BadRequest(kind, field + ": " + what);
}
ApiError Malformed(const std::string& field, const std::string& what) {
  return Bad(ErrorKind::kMalformed, field, what);
}

std::string TypeName(const json& j) {
  if (j.is_number_float()) return "a fractional number";
  if (j.is_number()) return "an integer";
  return j.type_name();
}

// Parses JSON without exceptions escaping; the body size was checked before.
ApiResult<json> ParseObject(std::string_view body, const char* what) {
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    return Malformed(what, std::string("invalid JSON at byte ") + std::to_string(e.byte));
  } catch (const json::exception& e) {
    return Malformed(what, std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) return Malformed(what, "expected a JSON object, got " + TypeName(j));
  return j;
}

ApiResult<Parameters> DecodeParameters(const json& obj, const std::string& field) {
  if (!obj.is_object()) return Malformed(field, "expected an object, got " + TypeName(obj));
  Parameters out;
  for (const auto& [key, v] : obj.items()) {
    auto f = [&] { return field + "." + key; };  // built only for an error
    if (v.is_boolean()) {
      out[key] = v.get<bool>();
    } else if (v.is_number_integer() && !v.is_number_unsigned()) {
      out[key] = v.get<int64_t>();
    } else if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return Malformed(f(), "integer out of range");
      out[key] = static_cast<int64_t>(v.get<uint64_t>());
    } else if (v.is_number_float()) {
      out[key] = v.get<double>();
    } else if (v.is_string()) {
      out[key] = v.get<std::string>();
    } else {
      return Malformed(f(), "expected a bool, number or string, got " + TypeName(v));
    }
  }
  return out;
}

json EncodeParameters(const Parameters& params) {
  json out = json::object();
  for (const auto& [k, v] : params) std::visit([&, &k = k](const auto& x) { out[k] = x; }, v);
  return out;
}

ApiResult<std::vector<int64_t>> DecodeShape(const json& j, const std::string& field) {
  if (!j.is_array()) return Malformed(field, "expected an array of integers, got " + TypeName(j));
  if (j.size() > kMaxDims)
    return Bad(ErrorKind::kWrongShape, field,
               std::to_string(j.size()) + " dimensions, at most " + std::to_string(kMaxDims));
  std::vector<int64_t> shape;
  for (size_t i = 0; i < j.size(); ++i) {
    const json& d = j[i];
    auto f = [&] { return field + "[" + std::to_string(i) + "]"; };  // built only for an error
    if (d.is_number_unsigned()) {
      if (d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return Bad(ErrorKind::kWrongShape, f(), "dimension out of range");
      shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    } else if (d.is_number_integer()) {
      return Bad(ErrorKind::kWrongShape, f(),
                 "dimensions must be >= 0 (got " + std::to_string(d.get<int64_t>()) + ")");
    } else {
      return Malformed(f(), "expected a non-negative integer, got " + TypeName(d));
    }
  }
  return shape;
}

// Collects the leaves of flat or nested row-major `data` (rule 4).
ApiResult<std::vector<const json*>> Flatten(const json& data, const std::vector<int64_t>& shape,
                                            uint64_t count, const std::string& field) {
  if (!data.is_array()) return Malformed(field, "expected an array, got " + TypeName(data));
  std::vector<const json*> leaves;
  leaves.reserve(count);
  const bool nested = !data.empty() && data[0].is_array();
  if (!nested) {
    if (data.size() != count)
      return Bad(ErrorKind::kWrongShape, field,
                 std::to_string(data.size()) + " elements, shape " + ShapeString(shape) +
                     " needs " + std::to_string(count));
    for (size_t i = 0; i < data.size(); ++i) {
      if (data[i].is_array())
        return Bad(ErrorKind::kWrongShape, field + "[" + std::to_string(i) + "]",
                   "mixes nested arrays and elements");
      leaves.push_back(&data[i]);
    }
    return leaves;
  }
  // Nested: walk level by level; depth is bounded by kMaxDims.
  struct Walker {
    const std::vector<int64_t>& shape;
    std::vector<const json*>& leaves;
    std::optional<ApiError> error;
    void Walk(const json& node, size_t depth, const std::string& path) {
      if (error) return;
      if (depth == shape.size()) {
        if (node.is_array()) {
          error = Bad(ErrorKind::kWrongShape, path,
                      "nested deeper than shape " + ShapeString(shape));
          return;
        }
        leaves.push_back(&node);
        return;
      }
      if (!node.is_array() || node.size() != static_cast<uint64_t>(shape[depth])) {
        error = Bad(ErrorKind::kWrongShape, path,
                    "expected an array of " + std::to_string(shape[depth]) +
                        " (nested row-major for shape " + ShapeString(shape) + "), got " +
                        (node.is_array() ? "an array of " + std::to_string(node.size())
                                         : TypeName(node)));
        return;
      }
      for (size_t i = 0; i < node.size() && !error; ++i)
        Walk(node[i], depth + 1, path + "[" + std::to_string(i) + "]");
    }
  };
  Walker w{shape, leaves, std::nullopt};
  w.Walk(data, 0, field);
  if (w.error) return *w.error;
  return leaves;
}

bool IsNonFiniteString(const json& j) {
  if (!j.is_string()) return false;
  static const std::set<std::string> kNames = {"NaN", "nan", "-nan", "Inf", "inf", "-Inf",
                                                "-inf", "Infinity", "-Infinity", "+Infinity"};
  return kNames.count(j.get_ref<const std::string&>()) > 0;
}

std::string ElementField(const std::string& field, size_t i) {
  return field + "[" + std::to_string(i) + "]";
}

// Converts the leaves to the datatype's element type (rule 4).
ApiResult<TensorData> DecodeElements(const std::vector<const json*>& leaves, DataType type,
                                     const std::string& field) {
  const std::string tname(DataTypeName(type));
  auto expected = [&](size_t i, const char* what) {
    return Bad(ErrorKind::kWrongDatatype, ElementField(field, i),
               std::string("expected ") + what + " for " + tname + ", got " +
                   TypeName(*leaves[i]));
  };
  auto non_finite = [&](size_t i, const std::string& what) {
    return Bad(ErrorKind::kNonFinite, ElementField(field, i), what + " is not allowed (element " +
                                                                  std::to_string(i) + ")");
  };
  auto floating = [&](auto tag) -> ApiResult<TensorData> {
    using F = decltype(tag);
    std::vector<F> out;
    out.reserve(leaves.size());
    for (size_t i = 0; i < leaves.size(); ++i) {
      const json& j = *leaves[i];
      if (IsNonFiniteString(j)) return non_finite(i, j.get<std::string>());
      if (!j.is_number()) return expected(i, "a number");
      const double d = j.get<double>();
      if (std::isnan(d)) return non_finite(i, "NaN");
      if (!std::isfinite(d) || (sizeof(F) == 4 && std::fabs(d) > FLT_MAX))
        return non_finite(i, "Inf (" + tname + " overflow)");
      out.push_back(static_cast<F>(d));
    }
    return TensorData(std::move(out));
  };
  auto integral = [&](auto tag, int64_t lo, int64_t hi) -> ApiResult<TensorData> {
    using I = decltype(tag);
    std::vector<I> out;
    out.reserve(leaves.size());
    for (size_t i = 0; i < leaves.size(); ++i) {
      const json& j = *leaves[i];
      if (!j.is_number_integer()) return expected(i, "an integer");
      bool in_range;
      int64_t v = 0;
      if (j.is_number_unsigned()) {
        const uint64_t u = j.get<uint64_t>();
        in_range = u <= static_cast<uint64_t>(hi);
        v = static_cast<int64_t>(u);
      } else {
        v = j.get<int64_t>();
        in_range = v >= lo && v <= hi;
      }
      if (!in_range)
        return Bad(ErrorKind::kWrongDatatype, ElementField(field, i),
                   j.dump() + " is out of range for " + tname + " [" + std::to_string(lo) +
                       ", " + std::to_string(hi) + "]");
      out.push_back(static_cast<I>(v));
    }
    return TensorData(std::move(out));
  };
  switch (type) {
    case DataType::kFp32: return floating(float{});
    case DataType::kFp64: return floating(double{});
    case DataType::kInt32:
      return integral(int32_t{}, std::numeric_limits<int32_t>::min(),
                      std::numeric_limits<int32_t>::max());
    case DataType::kInt64:
      return integral(int64_t{}, std::numeric_limits<int64_t>::min(),
                      std::numeric_limits<int64_t>::max());
    case DataType::kUint8: return integral(uint8_t{}, 0, 255);
    case DataType::kBool: {
      std::vector<uint8_t> out;
      out.reserve(leaves.size());
      for (size_t i = 0; i < leaves.size(); ++i) {
        if (!leaves[i]->is_boolean()) return expected(i, "true or false");
        out.push_back(leaves[i]->get<bool>() ? 1 : 0);
      }
      return TensorData(std::move(out));
    }
    case DataType::kBytes: {
      std::vector<std::string> out;
      out.reserve(leaves.size());
      for (size_t i = 0; i < leaves.size(); ++i) {
        if (!leaves[i]->is_string()) return expected(i, "a string");
        out.push_back(leaves[i]->get<std::string>());
      }
      return TensorData(std::move(out));
    }
    default:
      return Bad(ErrorKind::kWrongDatatype, field, tname + " is not supported");
  }
}

const json* Find(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

ApiResult<std::string> RequiredString(const json& obj, const char* key, const std::string& field) {
  const json* v = Find(obj, key);
  if (v == nullptr) return Malformed(field, "missing");
  if (!v->is_string()) return Malformed(field, "expected a string, got " + TypeName(*v));
  return v->get<std::string>();
}

// The bytes after the JSON header (binary tensor extension, rules 7-8).
struct BinarySource {
  bool present = false;  // the request had an Inference-Header-Content-Length
  std::string_view data;
  size_t offset = 0;  // consumed so far, in input order
};

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the binary tensor extension is little-endian; this codec copies host-order bytes");

// Bytes per element in binary form; 0 for BYTES (not accepted in binary).
size_t ElementSize(DataType type) {
  switch (type) {
    case DataType::kBool:
    case DataType::kUint8: return 1;
    case DataType::kInt32:
    case DataType::kFp32: return 4;
    case DataType::kInt64:
    case DataType::kFp64: return 8;
    default: return 0;
  }
}

template <typename T>
std::vector<T> CopyElements(std::string_view bytes, size_t n) {
  std::vector<T> out(n);
  if (n > 0) std::memcpy(out.data(), bytes.data(), n * sizeof(T));
  return out;
}

// `n` elements of `type` from `bytes` (n × ElementSize bytes); refuses NaN
// and Inf with the element's index, as for JSON (rule 4).
ApiResult<TensorData> DecodeBinaryElements(std::string_view bytes, size_t n, DataType type,
                                           const std::string& field) {
  auto finite = [&](const auto& v) -> std::optional<ApiError> {
    for (size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        return Bad(ErrorKind::kNonFinite, ElementField(field, i),
                   std::string(std::isnan(v[i]) ? "NaN" : "Inf") + " is not allowed (element " +
                       std::to_string(i) + ")");
      }
    }
    return std::nullopt;
  };
  switch (type) {
    case DataType::kFp32: {
      auto v = CopyElements<float>(bytes, n);
      if (auto e = finite(v)) return *e;
      return TensorData(std::move(v));
    }
    case DataType::kFp64: {
      auto v = CopyElements<double>(bytes, n);
      if (auto e = finite(v)) return *e;
      return TensorData(std::move(v));
    }
    case DataType::kInt32: return TensorData(CopyElements<int32_t>(bytes, n));
    case DataType::kInt64: return TensorData(CopyElements<int64_t>(bytes, n));
    case DataType::kUint8: return TensorData(CopyElements<uint8_t>(bytes, n));
    case DataType::kBool: {
      auto v = CopyElements<uint8_t>(bytes, n);
      for (uint8_t& b : v) b = b != 0 ? 1 : 0;
      return TensorData(std::move(v));
    }
    default:
      return Bad(ErrorKind::kWrongDatatype, field, std::string(DataTypeName(type)) + " is not supported in binary");
  }
}

// Appends t's elements as little-endian bytes; false (nothing appended) for
// BYTES.
bool AppendRaw(const Tensor& t, std::string* out) {
  return std::visit(
      [&](const auto& v) {
        using E = typename std::decay_t<decltype(v)>::value_type;
        if constexpr (std::is_same_v<E, std::string>) {
          return false;
        } else {
          out->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(E));
          return true;
        }
      },
      t.data);
}

// Rule 7: the tensor's binary_data_size bytes from `bin`.
ApiResult<TensorData> DecodeBinaryTensor(const Tensor& t, const json& j, uint64_t count,
                                         const std::string& field, BinarySource* bin) {
  const std::string f = field + ".parameters.binary_data_size";
  if (Find(j, "data") != nullptr)
    return Malformed(field, "has both data and parameters.binary_data_size; send one of them");
  if (bin == nullptr || !bin->present)
    return Malformed(f, std::string("binary data needs the ") + kInferenceHeaderContentLength +
                            " header (the length of the JSON part of the body)");
  const Parameter& p = t.parameters.at("binary_data_size");
  if (!std::holds_alternative<int64_t>(p) || std::get<int64_t>(p) < 0)
    return Malformed(f, "expected a byte count >= 0");
  const uint64_t size = static_cast<uint64_t>(std::get<int64_t>(p));
  const size_t esize = ElementSize(t.datatype);
  if (esize == 0) {
    return Bad(ErrorKind::kWrongDatatype, field + ".datatype",
               std::string(DataTypeName(t.datatype)) + " cannot be sent as binary data; send it in data");
  }
  const uint64_t expected = count * esize;
  if (size != expected) {
    return Bad(ErrorKind::kWrongShape, f,
               std::to_string(size) + " bytes, but shape " + ShapeString(t.shape) + " of " +
                   std::string(DataTypeName(t.datatype)) + " needs " + std::to_string(expected) + " (" +
                   std::to_string(count) + " elements x " + std::to_string(esize) + " bytes)");
  }
  const size_t left = bin->data.size() - bin->offset;
  if (size > left) {
    return Malformed(f, std::to_string(size) + " bytes, but only " + std::to_string(left) +
                            " bytes of binary data are left after the JSON header and the inputs before");
  }
  auto data = DecodeBinaryElements(bin->data.substr(bin->offset, size), count, t.datatype, field + ".binary_data");
  if (!data.ok()) return data.error();
  bin->offset += size;
  return std::move(data).value();
}

std::string ExpectedShapes(const TensorSpec& spec) {
  std::string s;
  for (size_t i = 0; i < spec.shapes.size(); ++i) {
    if (i) s += " or ";
    s += ShapeString(spec.shapes[i]);
  }
  return s;
}

// Decodes one tensor: name, datatype, shape, data (+ parameters). With a spec,
// checks the datatype and shape against it (rules 3-5).
ApiResult<Tensor> DecodeTensor(const json& j, const std::string& field, const TensorSpec* spec,
                               const CodecLimits& limits, BinarySource* bin) {
  if (!j.is_object()) return Malformed(field, "expected an object, got " + TypeName(j));
  Tensor t;
  auto name = RequiredString(j, "name", field + ".name");
  if (!name.ok()) return name.error();
  t.name = std::move(name).value();
  auto dt_name = RequiredString(j, "datatype", field + ".datatype");
  if (!dt_name.ok()) return dt_name.error();
  auto dt = ParseDataType(dt_name.value());
  if (!dt) {
    return Bad(ErrorKind::kWrongDatatype, field + ".datatype",
               "unknown datatype \"" + dt_name.value() + "\" (v2 names: BOOL, UINT8, INT32, "
               "INT64, FP32, FP64, BYTES, ...)");
  }
  if (!IsDecodable(*dt)) {
    return Bad(ErrorKind::kWrongDatatype, field + ".datatype",
               dt_name.value() + " is not supported (supported: " + DecodableDataTypeNames() +
                   ")");
  }
  if (spec != nullptr && IsNumeric(spec->datatype) != IsNumeric(*dt)) {
    return Bad(ErrorKind::kWrongDatatype, field + ".datatype",
               "expected " + std::string(DataTypeName(spec->datatype)) +
                   (IsNumeric(spec->datatype) ? " (or another numeric datatype)" : "") +
                   ", got " + dt_name.value());
  }
  t.datatype = *dt;
  const json* shape_j = Find(j, "shape");
  if (shape_j == nullptr) return Malformed(field + ".shape", "missing");
  auto shape = DecodeShape(*shape_j, field + ".shape");
  if (!shape.ok()) return shape.error();
  t.shape = std::move(shape).value();
  if (spec != nullptr) {
    bool match = false;
    for (const auto& pattern : spec->shapes) match = match || ShapeMatches(t.shape, pattern);
    if (!match) {
      return Bad(ErrorKind::kWrongShape, field + ".shape",
                 "expected " + ExpectedShapes(*spec) + ", got " + ShapeString(t.shape));
    }
  }
  if (limits.max_rows > 0 && !t.shape.empty() && t.shape[0] > limits.max_rows) {
    return ApiError::TooLarge(field + ".shape[0]: " + std::to_string(t.shape[0]) +
                              " rows exceed the limit of " + std::to_string(limits.max_rows) +
                              " per request; split the request");
  }
  auto count = ElementCount(t.shape, limits.max_elements);
  if (!count) {
    return ApiError::TooLarge(field + ".shape: " + ShapeString(t.shape) + " has more than " +
                              std::to_string(limits.max_elements) + " elements");
  }
  if (const json* p = Find(j, "parameters")) {
    auto params = DecodeParameters(*p, field + ".parameters");
    if (!params.ok()) return params.error();
    t.parameters = std::move(params).value();
  }
  if (t.parameters.count("binary_data_size") > 0) {
    auto elements = DecodeBinaryTensor(t, j, *count, field, bin);
    if (!elements.ok()) return elements.error();
    t.data = std::move(elements).value();
    return t;
  }
  const json* data = Find(j, "data");
  if (data == nullptr) return Malformed(field + ".data", "missing");
  auto leaves = Flatten(*data, t.shape, *count, field + ".data");
  if (!leaves.ok()) return leaves.error();
  auto elements = DecodeElements(leaves.value(), t.datatype, field + ".data");
  if (!elements.ok()) return elements.error();
  t.data = std::move(elements).value();
  return t;
}

// `raw` (may be null): append the elements there as binary data instead of
// writing `data` (rule 9); BYTES always goes as JSON.
json EncodeTensor(const Tensor& t, std::string* raw = nullptr) {
  json j = {{"name", t.name}, {"datatype", DataTypeName(t.datatype)}, {"shape", t.shape}};
  if (raw != nullptr) {
    const size_t before = raw->size();
    if (AppendRaw(t, raw)) {
      Parameters params = t.parameters;
      params["binary_data_size"] = static_cast<int64_t>(raw->size() - before);
      j["parameters"] = EncodeParameters(params);
      return j;
    }
  }
  std::visit(
      [&](const auto& v) {
        using E = typename std::decay_t<decltype(v)>::value_type;
        if (t.datatype == DataType::kBool) {
          json arr = json::array();
          if constexpr (std::is_same_v<E, uint8_t>)
            for (uint8_t b : v) arr.push_back(b != 0);
          j["data"] = std::move(arr);
        } else if constexpr (std::is_same_v<E, uint8_t>) {
          json arr = json::array();
          for (uint8_t b : v) arr.push_back(static_cast<int>(b));
          j["data"] = std::move(arr);
        } else {
          j["data"] = v;
        }
      },
      t.data);
  if (!t.parameters.empty()) j["parameters"] = EncodeParameters(t.parameters);
  return j;
}

// Rule 8: the JSON part of `body`; the rest goes to `bin`.
ApiResult<std::string_view> SplitBody(std::string_view body, std::optional<uint64_t> header_length,
                                      BinarySource* bin) {
  if (!header_length) return body;
  if (*header_length > body.size()) {
    return Malformed(kInferenceHeaderContentLength,
                     std::to_string(*header_length) + " exceeds the body's " + std::to_string(body.size()) +
                         " bytes");
  }
  bin->present = true;
  bin->data = body.substr(*header_length);
  return body.substr(0, *header_length);
}

// Rule 8: every binary byte belongs to a tensor.
std::optional<ApiError> CheckBinaryConsumed(const BinarySource& bin, const char* tensors) {
  if (bin.offset == bin.data.size()) return std::nullopt;
  return Malformed("request body", std::to_string(bin.data.size()) +
                                       " bytes of binary data follow the JSON header, but the " + tensors +
                                       "' binary_data_size add up to " + std::to_string(bin.offset));
}

ApiResult<std::string> OptionalId(const json& obj) {
  const json* id = Find(obj, "id");
  if (id == nullptr) return std::string();
  if (!id->is_string()) return Malformed("id", "expected a string, got " + TypeName(*id));
  if (id->get_ref<const std::string&>().size() > kMaxIdLength)
    return Malformed("id", "longer than " + std::to_string(kMaxIdLength) + " characters");
  return id->get<std::string>();
}

}  // namespace

ApiResult<InferRequest> DecodeInferRequest(std::string_view body, const ModelMetadata& model,
                                           const CodecLimits& limits, std::optional<uint64_t> header_length) {
  if (body.size() > limits.max_body_bytes) {
    return ApiError::TooLarge("request body: " + std::to_string(body.size()) +
                              " bytes exceed the limit of " +
                              std::to_string(limits.max_body_bytes));
  }
  BinarySource bin;
  auto split = SplitBody(body, header_length, &bin);
  if (!split.ok()) return split.error();
  auto parsed = ParseObject(split.value(), "request body");
  if (!parsed.ok()) return parsed.error();
  const json& j = parsed.value();
  InferRequest req;
  auto id = OptionalId(j);
  if (!id.ok()) return id.error();
  req.id = std::move(id).value();
  if (const json* p = Find(j, "parameters")) {
    auto params = DecodeParameters(*p, "parameters");
    if (!params.ok()) return params.error();
    req.parameters = std::move(params).value();
  }
  const json* inputs = Find(j, "inputs");
  if (inputs == nullptr) return Malformed("inputs", "missing");
  if (!inputs->is_array() || inputs->empty())
    return Malformed("inputs", "expected a non-empty array, got " + TypeName(*inputs));
  std::vector<std::optional<Tensor>> by_spec(model.inputs.size());
  for (size_t i = 0; i < inputs->size(); ++i) {
    const std::string field = "inputs[" + std::to_string(i) + "]";
    const json& in = (*inputs)[i];
    // Find the spec first so the datatype and shape are checked against it.
    size_t spec_index = model.inputs.size();
    if (in.is_object()) {
      auto name = RequiredString(in, "name", field + ".name");
      if (!name.ok()) return name.error();
      for (size_t s = 0; s < model.inputs.size(); ++s)
        if (model.inputs[s].name == name.value()) spec_index = s;
      if (spec_index == model.inputs.size()) {
        std::string known;
        for (const auto& s : model.inputs) known += (known.empty() ? "\"" : ", \"") + s.name + "\"";
        return Malformed(field + ".name", "unknown input \"" + name.value() + "\" (model " +
                                              model.name + " takes " + known + ")");
      }
      if (by_spec[spec_index])
        return Malformed(field + ".name", "input \"" + name.value() + "\" given twice");
    }
    auto t = DecodeTensor(in, field, in.is_object() ? &model.inputs[spec_index] : nullptr, limits, &bin);
    if (!t.ok()) return t.error();
    by_spec[spec_index] = std::move(t).value();
  }
  for (size_t s = 0; s < model.inputs.size(); ++s) {
    if (!by_spec[s]) return Malformed("inputs", "missing input \"" + model.inputs[s].name + "\"");
    if (s > 0 && !by_spec[s]->shape.empty() && !by_spec[0]->shape.empty() &&
        by_spec[s]->shape[0] != by_spec[0]->shape[0]) {
      return Bad(ErrorKind::kWrongShape, "inputs",
                 "inputs disagree on the batch size (" + std::to_string(by_spec[0]->shape[0]) +
                     " vs " + std::to_string(by_spec[s]->shape[0]) + ")");
    }
    req.inputs.push_back(std::move(*by_spec[s]));
  }
  if (auto e = CheckBinaryConsumed(bin, "inputs")) return *e;
  if (const json* outputs = Find(j, "outputs")) {
    if (!outputs->is_array())
      return Malformed("outputs", "expected an array, got " + TypeName(*outputs));
    for (size_t i = 0; i < outputs->size(); ++i) {
      const std::string field = "outputs[" + std::to_string(i) + "]";
      const json& o = (*outputs)[i];
      if (!o.is_object()) return Malformed(field, "expected an object, got " + TypeName(o));
      auto name = RequiredString(o, "name", field + ".name");
      if (!name.ok()) return name.error();
      bool known = false;
      for (const auto& s : model.outputs) known = known || s.name == name.value();
      if (!known) return Malformed(field + ".name", "unknown output \"" + name.value() + "\"");
      RequestedOutput out{std::move(name).value(), {}};
      if (const json* p = Find(o, "parameters")) {
        auto params = DecodeParameters(*p, field + ".parameters");
        if (!params.ok()) return params.error();
        out.parameters = std::move(params).value();
      }
      req.outputs.push_back(std::move(out));
    }
  }
  return req;
}

ApiResult<FeedbackRequest> DecodeFeedbackRequest(std::string_view body, const CodecLimits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return ApiError::TooLarge("request body: " + std::to_string(body.size()) +
                              " bytes exceed the limit of " +
                              std::to_string(limits.max_body_bytes));
  }
  auto parsed = ParseObject(body, "request body");
  if (!parsed.ok()) return parsed.error();
  const json& j = parsed.value();
  FeedbackRequest fb;
  auto id = RequiredString(j, "id", "id");
  if (!id.ok()) return id.error();
  if (id.value().empty() || id.value().size() > kMaxIdLength)
    return Malformed("id", "must be 1 to " + std::to_string(kMaxIdLength) + " characters");
  fb.id = std::move(id).value();
  const json* label = Find(j, "label");
  if (label == nullptr) return Malformed("label", "missing");
  if (!label->is_number_integer() || (!label->is_number_unsigned() && label->get<int64_t>() < 0))
    return Malformed("label", "expected a class index >= 0, got " + label->dump());
  if (label->is_number_unsigned() && label->get<uint64_t>() > (1u << 30))
    return Malformed("label", "class index out of range: " + label->dump());
  fb.label = label->get<int64_t>();
  return fb;
}

std::string EncodeInferResponse(const InferResponse& r) {
  json j = {{"model_name", r.model_name}, {"model_version", r.model_version}};
  if (!r.id.empty()) j["id"] = r.id;
  json outs = json::array();
  for (const auto& t : r.outputs) outs.push_back(EncodeTensor(t));
  j["outputs"] = std::move(outs);
  if (!r.parameters.empty()) j["parameters"] = EncodeParameters(r.parameters);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

EncodedBody EncodeInferResponse(const InferResponse& r, const std::set<std::string>& binary) {
  json j = {{"model_name", r.model_name}, {"model_version", r.model_version}};
  if (!r.id.empty()) j["id"] = r.id;
  std::string raw;
  json outs = json::array();
  for (const auto& t : r.outputs) outs.push_back(EncodeTensor(t, binary.count(t.name) ? &raw : nullptr));
  j["outputs"] = std::move(outs);
  if (!r.parameters.empty()) j["parameters"] = EncodeParameters(r.parameters);
  EncodedBody out;
  out.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  out.json_length = out.body.size();
  out.body += raw;
  return out;
}

EncodedBody EncodeInferRequest(const InferRequest& r, const std::set<std::string>& binary) {
  json j = json::object();
  if (!r.id.empty()) j["id"] = r.id;
  if (!r.parameters.empty()) j["parameters"] = EncodeParameters(r.parameters);
  std::string raw;
  json ins = json::array();
  for (const auto& t : r.inputs) ins.push_back(EncodeTensor(t, binary.count(t.name) ? &raw : nullptr));
  j["inputs"] = std::move(ins);
  if (!r.outputs.empty()) {
    json outs = json::array();
    for (const auto& o : r.outputs) {
      json oj = {{"name", o.name}};
      if (!o.parameters.empty()) oj["parameters"] = EncodeParameters(o.parameters);
      outs.push_back(std::move(oj));
    }
    j["outputs"] = std::move(outs);
  }
  EncodedBody out;
  out.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  out.json_length = out.body.size();
  out.body += raw;
  return out;
}

ApiResult<std::optional<uint64_t>> ParseInferenceHeaderLength(std::string_view value) {
  if (value.empty()) return std::optional<uint64_t>();
  uint64_t n = 0;
  const bool digits = value.size() <= 18 &&
                      std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    return Malformed(kInferenceHeaderContentLength,
                     "expected the JSON header's length in bytes, got \"" +
                         std::string(value.substr(0, 32)) + "\"");
  }
  for (char c : value) n = n * 10 + static_cast<uint64_t>(c - '0');
  return std::optional<uint64_t>(n);
}

std::set<std::string> BinaryOutputs(const InferRequest& request, const ModelMetadata& model) {
  auto flag = [](const Parameters& p, const char* key) -> std::optional<bool> {
    auto it = p.find(key);
    if (it == p.end() || !std::holds_alternative<bool>(it->second)) return std::nullopt;
    return std::get<bool>(it->second);
  };
  const bool all = flag(request.parameters, "binary_data_output").value_or(false);
  std::set<std::string> out;
  for (const auto& spec : model.outputs) {
    bool binary = all;
    for (const auto& o : request.outputs) {
      if (o.name == spec.name) binary = flag(o.parameters, "binary_data").value_or(binary);
    }
    if (binary) out.insert(spec.name);
  }
  return out;
}

ApiResult<InferResponse> DecodeInferResponse(std::string_view body, std::optional<uint64_t> header_length) {
  BinarySource bin;
  auto split = SplitBody(body, header_length, &bin);
  if (!split.ok()) return split.error();
  auto parsed = ParseObject(split.value(), "response body");
  if (!parsed.ok()) return parsed.error();
  const json& j = parsed.value();
  InferResponse r;
  auto name = RequiredString(j, "model_name", "model_name");
  if (!name.ok()) return name.error();
  r.model_name = std::move(name).value();
  if (Find(j, "model_version")) {
    auto v = RequiredString(j, "model_version", "model_version");
    if (!v.ok()) return v.error();
    r.model_version = std::move(v).value();
  }
  auto id = OptionalId(j);
  if (!id.ok()) return id.error();
  r.id = std::move(id).value();
  const json* outputs = Find(j, "outputs");
  if (outputs == nullptr || !outputs->is_array()) return Malformed("outputs", "expected an array");
  CodecLimits limits;
  for (size_t i = 0; i < outputs->size(); ++i) {
    auto t = DecodeTensor((*outputs)[i], "outputs[" + std::to_string(i) + "]", nullptr, limits, &bin);
    if (!t.ok()) return t.error();
    r.outputs.push_back(std::move(t).value());
  }
  if (auto e = CheckBinaryConsumed(bin, "outputs")) return *e;
  if (const json* p = Find(j, "parameters")) {
    auto params = DecodeParameters(*p, "parameters");
    if (!params.ok()) return params.error();
    r.parameters = std::move(params).value();
  }
  return r;
}

std::string EncodeModelMetadata(const ModelMetadata& m) {
  auto specs = [](const std::vector<TensorSpec>& v) {
    json arr = json::array();
    for (const auto& s : v) {
      arr.push_back({{"name", s.name},
                     {"datatype", DataTypeName(s.datatype)},
                     {"shape", s.shapes.empty() ? std::vector<int64_t>{} : s.shapes.front()}});
    }
    return arr;
  };
  json j = {{"name", m.name},
            {"versions", m.versions},
            {"platform", m.platform},
            {"inputs", specs(m.inputs)},
            {"outputs", specs(m.outputs)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string EncodeError(const ApiError& error) {
  // dump() with replace: a message quoting hostile input may hold bad UTF-8.
  return json{{"error", error.message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace gantry::serving
