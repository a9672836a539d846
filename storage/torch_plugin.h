// The boundary between gantry-storage and its LibTorch plugin,
// libgantry_storage_torch.so (torch_codec.cc).
//
// LibTorch takes about a second to load, which every start of the service
// would pay although only export and import need it; so torch_io.cc
// dlopen()s the plugin on first use. Both sides are built together by the
// same compiler, so the table below passes C++ types; errors travel as
// strings ("" = success) because Status's out-of-line parts live in each
// binary separately (the plugin hides its symbols).
//
// Thread safety: the functions are reentrant.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "storage/torch_io.h"

namespace gantry::storage {

// Bumped whenever TorchCodec or StateDictTensor changes shape.
inline constexpr int kTorchPluginAbi = 1;
inline constexpr const char* kTorchPluginFile = "libgantry_storage_torch.so";
inline constexpr const char* kTorchPluginSymbol = "GantryStorageTorchCodec";

struct TorchCodec {
  int abi = kTorchPluginAbi;
  std::string (*encode)(const std::vector<StateDictTensor>& tensors, std::string* out);
  std::string (*decode)(std::string_view bytes, std::vector<StateDictTensor>* out);
};

}  // namespace gantry::storage

extern "C" const gantry::storage::TorchCodec* GantryStorageTorchCodec();
