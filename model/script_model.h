// ScriptModel: a TorchScript module, written and scripted in Python, trained
// from C++ behind the Model interface (model.h).
//
// What the module must provide (docs/worker.md, "Bringing a model and data"):
//   - forward(x: Tensor) -> Tensor, taking a float batch [B, ...] and
//     returning logits [B, classes];
//   - parameters that require gradients (a frozen or traced-without-grad
//     module has nothing to train);
//   - optionally an attribute `input_shape: List[int]`, the shape of one
//     sample (e.g. [1, 28, 28]); without it the data decides.
// Parameter and buffer names are the module's own (Python state_dict()
// keys). torch.jit.script keeps training-mode behaviour (dropout, batch
// norm); a traced module keeps only the path it was traced on.
//
// Ownership: the object owns its torch::jit::Module (a shared handle inside
// LibTorch; the tensors it hands out are the module's own). Thread safety:
// one thread at a time.
#pragma once

#include <torch/script.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"

namespace gantry::model {

class ScriptModel final : public Model {
 public:
  // Loads `path` (torch.jit.save output) onto the CPU; every failure names
  // the file and says how to make one.
  static Result<std::unique_ptr<ScriptModel>> Load(const std::string& path);

  std::string Describe() const override { return "torchscript " + path_; }
  Result<torch::Tensor> Forward(const torch::Tensor& batch) override;
  NamedTensors NamedParameters() const override { return Walk(true, false); }
  NamedTensors NamedBuffers() const override { return Walk(false, true); }
  NamedTensors StateDict() const override { return Walk(true, true); }
  void SetTraining(bool on) override { module_.train(on); }
  bool training() const override { return module_.is_training(); }
  std::optional<std::vector<int64_t>> InputShape() const override { return input_shape_; }
  Status To(const torch::Device& device) override;

 private:
  ScriptModel(torch::jit::Module module, std::string path, std::optional<std::vector<int64_t>> input_shape)
      : module_(std::move(module)), path_(std::move(path)), input_shape_(std::move(input_shape)) {}

  NamedTensors Walk(bool params, bool buffers) const;

  torch::jit::Module module_;
  std::string path_;
  std::optional<std::vector<int64_t>> input_shape_;
};

}  // namespace gantry::model
