// PyTorch interop: a version's tensors to and from the bytes of a file that
// Python's torch.save writes and torch.load reads (a zip archive holding a
// pickled dict {parameter name: tensor}).
//
// The work happens in a plugin linked with LibTorch (torch_plugin.h), built
// when CMake finds Torch and loaded on first use; without it these answer
// `unavailable: built without LibTorch` (or why the plugin did not load).
// LibTorch exceptions never leave the plugin.
//
// Thread safety: reentrant; the plugin is loaded once (std::call_once).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/dtype.h"

namespace gantry::storage {

struct StateDictTensor {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // contiguous, little-endian
};

// True when the plugin is built and loads.
bool TorchInteropAvailable();

// Bytes that torch.load reads as a dict of name -> tensor, in this order.
// `tensors[i].data` must match its dtype and shape.
Result<std::string> EncodeTorchStateDict(const std::vector<StateDictTensor>& tensors);

// A state dict written by torch.save(model.state_dict(), f) (the default
// zip format), or by EncodeTorchStateDict. Refuses anything else with a
// message that says what to save.
Result<std::vector<StateDictTensor>> DecodeTorchStateDict(std::string_view bytes);

}  // namespace gantry::storage
