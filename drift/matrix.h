// MatrixView: a non-owning, row-major table of numeric features (rows are
// observations, columns features), in the element type the data came in, so
// 60,000 uint8 images need not be widened to doubles up front. Matrix owns a
// copy (used for resampled windows). Not thread-safe to mutate; views are
// plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace gantry::drift {

enum class ElementType { kFloat64, kFloat32, kUint8 };

struct MatrixView {
  const void* data = nullptr;
  ElementType type = ElementType::kFloat64;
  size_t rows = 0;
  size_t cols = 0;

  static MatrixView Of(std::span<const double> v, size_t rows, size_t cols) {
    return {v.data(), ElementType::kFloat64, rows, cols};
  }
  static MatrixView Of(std::span<const float> v, size_t rows, size_t cols) {
    return {v.data(), ElementType::kFloat32, rows, cols};
  }
  static MatrixView Of(std::span<const uint8_t> v, size_t rows, size_t cols) {
    return {v.data(), ElementType::kUint8, rows, cols};
  }
  size_t ElementSize() const {
    return type == ElementType::kFloat64 ? 8 : type == ElementType::kFloat32 ? 4 : 1;
  }
  // Copies column c as doubles into *out (resized to rows).
  void Column(size_t c, std::vector<double>* out) const;
};

// An owned row-major table (bytes in the view's element type).
struct Matrix {
  std::vector<uint8_t> bytes;
  ElementType type = ElementType::kFloat64;
  size_t rows = 0;
  size_t cols = 0;

  MatrixView view() const { return {bytes.data(), type, rows, cols}; }
  // The given rows of `source`, in order.
  static Matrix SelectRows(const MatrixView& source, std::span<const size_t> rows);
};

}  // namespace gantry::drift
