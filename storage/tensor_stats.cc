#include "storage/tensor_stats.h"

#include <cmath>
#include <cstring>

namespace gantry::storage {
namespace {

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in float.
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  uint32_t bits = exp == 0x1f ? (sign | 0x7f800000u | (mant << 13))
                              : (sign | ((exp + 112) << 23) | (mant << 13));
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float BFloat16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace

double ElementAsDouble(DType dtype, const uint8_t* p) {
  switch (dtype) {
    case DType::kFloat32: return Load<float>(p);
    case DType::kFloat64: return Load<double>(p);
    case DType::kFloat16: return HalfToFloat(Load<uint16_t>(p));
    case DType::kBFloat16: return BFloat16ToFloat(Load<uint16_t>(p));
    case DType::kInt64: return static_cast<double>(Load<int64_t>(p));
    case DType::kInt32: return Load<int32_t>(p);
    case DType::kInt16: return Load<int16_t>(p);
    case DType::kInt8: return Load<int8_t>(p);
    case DType::kUInt8: return *p;
    case DType::kBool: return *p ? 1.0 : 0.0;
  }
  return 0;
}

DiffStats CompareTensors(DType dtype, std::span<const uint8_t> a, std::span<const uint8_t> b) {
  DiffStats s;
  const size_t item = DTypeSize(dtype);
  s.elements = a.size() / item;
  for (size_t i = 0; i < s.elements; ++i) {
    const uint8_t* pa = a.data() + i * item;
    const uint8_t* pb = b.data() + i * item;
    if (std::memcmp(pa, pb, item) == 0) {
      double x = ElementAsDouble(dtype, pa);
      if (std::isfinite(x)) s.l2_a += x * x;
      continue;
    }
    ++s.changed;
    double x = ElementAsDouble(dtype, pa);
    double y = ElementAsDouble(dtype, pb);
    if (std::isfinite(x)) s.l2_a += x * x;
    if (std::isfinite(x) && std::isfinite(y)) {
      double d = y - x;
      s.max_abs = std::max(s.max_abs, std::fabs(d));
      s.l2_diff += d * d;
    }
  }
  s.l2_diff = std::sqrt(s.l2_diff);
  s.l2_a = std::sqrt(s.l2_a);
  return s;
}

}  // namespace gantry::storage
