// Element-wise comparison of two tensors of one dtype and shape, for
// `gantry ckpt diff`: how many elements changed and by how much.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>

#include "storage/dtype.h"

namespace gantry::storage {

// One element of `dtype` at `p` as a double (float16 and bfloat16 widened
// exactly; bool as 0/1).
double ElementAsDouble(DType dtype, const uint8_t* p);

struct DiffStats {
  uint64_t elements = 0;
  uint64_t changed = 0;   // elements whose values differ (NaN != NaN)
  double max_abs = 0;     // largest |b - a| over finite pairs
  double l2_diff = 0;     // ||b - a||
  double l2_a = 0;        // ||a||
};

// REQUIRES: a.size() == b.size(), a multiple of DTypeSize(dtype).
DiffStats CompareTensors(DType dtype, std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace gantry::storage
