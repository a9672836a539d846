// The checkpoint tensor list on the storage wire (docs/protocol.md,
// "Storage"): [{name, dtype, shape, data: bin}], data the contiguous bytes in
// little-endian order, dtype one of float32, float64, int64, int32, uint8.
// Decoded here for every reader of load_checkpoint replies (the worker's
// CheckpointClient, gantry-serve's RegistryClient), with the typed field
// reader their reply decoders share.
//
// Thread safety: pure functions.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>

#include "common/protocol.h"
#include "common/status.h"
#include "model/checkpoint_model.h"

namespace gantry::model {

// The wire name of a tensor dtype; invalid_argument for any other dtype.
Result<std::string> DtypeName(torch::ScalarType t);
Result<torch::ScalarType> DtypeFromName(const std::string& name);

// The tensors of a list by name, validated (dtype, shape and byte count
// agree); `keep` (null = all) selects by name. invalid_argument naming the
// tensor for anything malformed; never throws.
Result<TensorMap> TensorsFromJson(const json& tensors,
                                  const std::function<bool(const std::string&)>& keep = nullptr);

// The ModelManifest in a checkpoint's meta block (docs/worker.md: model,
// model_builtin, model_hidden, model_torchscript, input_shape, num_classes,
// normalize); corruption naming `where` for a field of the wrong type.
Result<ModelManifest> ManifestFromMeta(const json& meta, const std::string& where);

// obj[key] as T, or `fallback` when absent or null; a value of another type
// is corruption naming `where` and the field (nlohmann's own message names
// none): "<where>: field 'step' has the wrong type (...)".
template <typename T>
Result<T> JsonField(const json& obj, const char* key, T fallback, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const std::exception& e) {
    return Status::Corruption(where + ": field '" + key + "' has the wrong type (" + e.what() + ")");
  }
}

}  // namespace gantry::model
