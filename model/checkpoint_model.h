// Building a model from a checkpoint version: the network its manifest
// describes, with the checkpoint's weights loaded into it.
//
// A checkpoint holds named tensors (model weights under their state_dict()
// names, plus training state under "optimizer/..." and "trainer/...") and a
// meta block that says how the network was built (ModelManifest). Decoding
// the storage service's message into these types is the caller's job (the
// worker's checkpoint client; later the serving component); this library
// knows tensors and specs, not wire formats.
//
// Used by the worker for warm start and resume (LoadWeights into the model
// the job spec built) and by serving to load a registry version
// (ModelFromCheckpoint).
//
// Thread safety: free functions; the model is used by one thread at a time.
#pragma once

#include <torch/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "model/model.h"

namespace gantry::model {

using TensorMap = std::map<std::string, torch::Tensor>;

// Training state travels beside the weights under these prefixes (the
// storage service's marker for non-model tensors); everything else is a
// weight.
inline constexpr std::string_view kOptimizerTensorPrefix = "optimizer/";
inline constexpr std::string_view kTrainerTensorPrefix = "trainer/";
bool IsWeightName(std::string_view name);

// Input preprocessing the saving run applied (IDX images: (x/255 - mean)/std);
// whoever serves the model must apply the same.
struct Normalization {
  double mean = 0;
  double std = 1;
};

// How a checkpoint's network was built: the worker writes it into the
// checkpoint's meta (model_builtin, model_hidden, model_torchscript,
// input_shape, num_classes, normalize, model).
struct ModelManifest {
  std::string builtin;               // "mlp", "cnn" or "torchscript"
  std::vector<int64_t> hidden;       // builtin layer widths (model.hidden)
  std::string torchscript;           // the module file, when builtin is "torchscript"
  std::vector<int64_t> input_shape;  // one sample, without the batch dimension
  int64_t num_classes = 0;
  std::string description;           // Model::Describe() of the run that saved it
  std::optional<Normalization> normalize;

  // The job spec's model block that builds this network.
  ModelSpec ToSpec() const;
};

// Copies the checkpoint's weights into `model`. Every entry of
// model.StateDict() must be present with the same shape and dtype, and no
// other weight (training state, see IsWeightName, is ignored). Errors start
// with "checkpoint <source>: " and say which names differ. The model keeps
// its device; tensors are copied onto it.
Status LoadWeights(Model& model, const TensorMap& tensors, const std::string& source);

// Builds the network `manifest` describes (builtin, or the TorchScript file
// it names, which must still exist) and loads the weights. `source` names
// the checkpoint in errors ("mnist@v3"). The model is on the CPU in eval
// mode.
Result<std::unique_ptr<Model>> ModelFromCheckpoint(const ModelManifest& manifest, const TensorMap& tensors,
                                                   const std::string& source);

}  // namespace gantry::model
