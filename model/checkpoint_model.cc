#include "model/checkpoint_model.h"

#include <torch/torch.h>

#include "model/models.h"

namespace gantry::model {

bool IsWeightName(std::string_view name) {
  return name.substr(0, kOptimizerTensorPrefix.size()) != kOptimizerTensorPrefix &&
         name.substr(0, kTrainerTensorPrefix.size()) != kTrainerTensorPrefix;
}

ModelSpec ModelManifest::ToSpec() const {
  ModelSpec spec;
  if (builtin == "torchscript") {
    spec.torchscript = torchscript;
  } else {
    spec.builtin = builtin;
    spec.hidden = hidden;
  }
  return spec;
}

Status LoadWeights(Model& model, const TensorMap& tensors, const std::string& source) {
  NamedTensors weights;
  for (const auto& [name, t] : tensors) {
    if (IsWeightName(name)) weights.emplace_back(name, t);
  }
  // Shapes and names: LoadStateDict lists every difference at once.
  // Dtype: a float64 tensor copied into float32 would load silently.
  for (const auto& [name, dst] : model.StateDict()) {
    auto it = tensors.find(name);
    if (it != tensors.end() && it->second.scalar_type() != dst.scalar_type()) {
      return Status::InvalidArgument("checkpoint " + source + ": tensor '" + name + "' is " +
                                     std::string(c10::toString(it->second.scalar_type())) + ", the model needs " +
                                     std::string(c10::toString(dst.scalar_type())));
    }
  }
  return model.LoadStateDict(weights).WithContext("checkpoint " + source);
}

Result<std::unique_ptr<Model>> ModelFromCheckpoint(const ModelManifest& manifest, const TensorMap& tensors,
                                                   const std::string& source) {
  if (manifest.builtin.empty()) {
    return Status::InvalidArgument("checkpoint " + source +
                                   ": its meta does not say how the model was built (no model_builtin)");
  }
  if (manifest.builtin == "torchscript" && manifest.torchscript.empty()) {
    return Status::InvalidArgument("checkpoint " + source +
                                   ": a TorchScript model, but its meta names no module file (model_torchscript)");
  }
  if (manifest.input_shape.empty() || manifest.num_classes < 1) {
    return Status::InvalidArgument("checkpoint " + source + ": its meta lacks input_shape or num_classes (got " +
                                   ShapeString(manifest.input_shape) + ", " +
                                   std::to_string(manifest.num_classes) + " classes)");
  }
  auto created = CreateModel(manifest.ToSpec(), manifest.input_shape, manifest.num_classes);
  if (!created.ok()) return created.status().WithContext("checkpoint " + source);
  std::unique_ptr<Model> model = std::move(created).value();
  GANTRY_RETURN_IF_ERROR(LoadWeights(*model, tensors, source));
  model->SetTraining(false);
  return model;
}

}  // namespace gantry::model
