// A checkpoint as received in a save_checkpoint request, validated.
//
// ParseCheckpoint() checks every field of the request body and answers
// invalid_argument naming the field and what is wrong, e.g.
//   "tensors[3].data has 400 bytes, shape [10,10] float32 needs 800".
// Tensor bytes are not copied: each TensorData::data is a view into the
// binary values of `body`, so `body` must outlive the Checkpoint.
//
// Thread safety: plain data; ParseCheckpoint is a pure function.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "storage/dtype.h"

namespace gantry::storage {

// Bounds that keep a hostile request from describing absurd tensors.
inline constexpr size_t kMaxTensorNameLength = 512;
inline constexpr size_t kMaxTensorRank = 16;

struct TensorData {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> data;  // view into the request body
};

struct Checkpoint {
  std::string model;
  std::string job_id;  // empty for a checkpoint not made by a Gantry job
  int64_t attempt = 0;
  int64_t step = 0;
  int64_t epoch = 0;
  json metrics = json::object();  // {name: number}
  json meta = json::object();     // free-form, stored as given
  std::vector<TensorData> tensors;

  // Sum of all tensor data sizes: the size of tensors.bin.
  uint64_t DataBytes() const;
};

Result<Checkpoint> ParseCheckpoint(const json& body);

// "[10,10]", for messages.
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace gantry::storage
