#include "drift/matrix.h"

#include <cstring>

namespace gantry::drift {

void MatrixView::Column(size_t c, std::vector<double>* out) const {
  out->resize(rows);
  double* dst = out->data();
  switch (type) {
    case ElementType::kFloat64: {
      const double* p = static_cast<const double*>(data) + c;
      for (size_t r = 0; r < rows; ++r) dst[r] = p[r * cols];
      break;
    }
    case ElementType::kFloat32: {
      const float* p = static_cast<const float*>(data) + c;
      for (size_t r = 0; r < rows; ++r) dst[r] = p[r * cols];
      break;
    }
    case ElementType::kUint8: {
      const uint8_t* p = static_cast<const uint8_t*>(data) + c;
      for (size_t r = 0; r < rows; ++r) dst[r] = p[r * cols];
      break;
    }
  }
}

Matrix Matrix::SelectRows(const MatrixView& source, std::span<const size_t> rows) {
  Matrix m;
  m.type = source.type;
  m.rows = rows.size();
  m.cols = source.cols;
  const size_t row_bytes = source.cols * source.ElementSize();
  m.bytes.resize(rows.size() * row_bytes);
  const auto* src = static_cast<const uint8_t*>(source.data);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::memcpy(m.bytes.data() + i * row_bytes, src + rows[i] * row_bytes, row_bytes);
  }
  return m;
}

}  // namespace gantry::drift
