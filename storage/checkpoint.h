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
#include <string_view>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "storage/dtype.h"
#include "storage/provenance.h"

namespace gantry::storage {

// Bounds that keep a hostile request from describing absurd tensors.
inline constexpr size_t kMaxTensorNameLength = 512;
inline constexpr size_t kMaxTensorRank = 16;
inline constexpr size_t kMaxFingerprintLength = 256;

// Tensor names with these prefixes hold optimizer and trainer state rather
// than model parameters; an export to a PyTorch state dict leaves them out
// unless asked to include everything.
inline constexpr std::string_view kOptimizerPrefix = "optimizer/";
inline constexpr std::string_view kTrainerPrefix = "trainer/";
bool IsModelTensor(std::string_view name);

struct TensorData {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> data;  // view into the request body
};

struct Checkpoint {
  // model, job, step, metrics, lineage; created_at is set by the save.
  Provenance prov;
  // Small JSON state for an exact resume (optimizer hyper-parameters,
  // sampler position). Large state travels as tensors named "optimizer/..."
  // and "trainer/..." (see IsModelTensor()).
  json optimizer_state = json::object();
  json trainer_state = json::object();
  std::vector<TensorData> tensors;

  // Sum of all tensor data sizes.
  uint64_t DataBytes() const;
};

Result<Checkpoint> ParseCheckpoint(const json& body);
// The metadata fields alone (everything but tensors), for import_version,
// whose tensors come from a file. `what` prefixes error messages.
Result<Checkpoint> ParseCheckpointMeta(const json& body, const std::string& what);
// Tensor names: non-empty, bounded, no control characters, valid UTF-8, no
// empty, "." or ".." '/'-separated segment.
Status CheckTensorName(const std::string& name, const std::string& field);

// "[10,10]", for messages.
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace gantry::storage
