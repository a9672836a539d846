// A restricted unpickler for the data.pkl record of a file written by
// Python's torch.save(model.state_dict(), f).
//
// LibTorch's own reader (torch::jit::pickle_load) turns the OrderedDict
// that state_dict() returns into None, so it cannot read the files users
// actually have. This reader understands exactly what such a pickle holds:
// protocols 2-5, dicts and OrderedDicts (their _metadata attribute is
// ignored), tuples, lists, scalars, strings, and tensors rebuilt by
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter from storages named
// by persistent ids ('storage', torch.<Type>Storage, key, location, numel).
// Any other callable becomes an opaque value, never executed; the top-level
// value must be a dict of string -> tensor.
//
// It only describes tensors (which storage record, offset, size, stride);
// torch_io.cc reads the storages from the zip and gathers the bytes.
//
// Thread safety: a pure function. Input is untrusted: every length is
// checked against what is left, so malformed bytes give invalid_argument.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/dtype.h"

namespace gantry::storage {

struct PickledTensor {
  std::string name;
  std::string storage_key;  // the record is "data/<storage_key>"
  DType dtype = DType::kFloat32;
  int64_t storage_numel = 0;
  int64_t storage_offset = 0;  // in elements
  std::vector<int64_t> size;
  std::vector<int64_t> stride;
};

Result<std::vector<PickledTensor>> ReadStateDictPickle(std::string_view pickle);

// DType of a storage class name ("FloatStorage" -> float32).
std::optional<DType> DTypeOfStorage(std::string_view storage_class);

}  // namespace gantry::storage
