// Model: what the training loop needs from a network, whatever defined it.
//
// Two implementations: the builtin mlp/cnn (torch::nn::Sequential, models.h)
// and a TorchScript module written in Python (script_model.h). Contract:
//   - Forward(x) takes a float batch [B, *InputShape()] and returns logits
//     [B, classes]; errors (LibTorch exceptions included) come back as Status.
//   - NamedParameters()/NamedBuffers()/StateDict() use the names and the
//     order of PyTorch's Module.state_dict() for the same module (each
//     module's own parameters, then its own buffers, then its children in
//     registration order, pre-order), so a checkpoint exported as a state dict
//     loads in Python without renaming. The tensors are the live ones: an
//     optimizer step or a copy_() into them changes the model.
//   - InputShape() is the per-sample shape the model expects when it can say
//     (builtins: the shape they were built for; TorchScript: its input_shape
//     attribute); otherwise the data decides.
// Part of the model library (gantry::model), below the components: the
// worker trains these models and serving will load them
// (checkpoint_model.h). It depends on common/ and LibTorch only.
//
// Ownership: CreateModel() returns a model owned by the caller; tensors it
// hands out share storage with it. Thread safety: one thread at a time.
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/job_spec.h"
#include "common/status.h"

namespace gantry::model {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

class Model {
 public:
  virtual ~Model() = default;

  // "mlp [256, 128]", "torchscript /models/net.pt": for logs and checkpoint meta.
  virtual std::string Describe() const = 0;
  virtual Result<torch::Tensor> Forward(const torch::Tensor& batch) = 0;
  virtual NamedTensors NamedParameters() const = 0;
  virtual NamedTensors NamedBuffers() const = 0;
  // Parameters and buffers, interleaved per module as state_dict() lists them.
  virtual NamedTensors StateDict() const = 0;
  // Training mode (dropout active, batch norm updates its statistics) or eval.
  virtual void SetTraining(bool on) = 0;
  virtual bool training() const = 0;
  virtual std::optional<std::vector<int64_t>> InputShape() const = 0;
  // Moves parameters and buffers; call before handing Parameters() to an optimizer.
  virtual Status To(const torch::Device& device) = 0;

  // The parameter tensors, in NamedParameters() order (for the optimizer
  // and the gradient averager).
  std::vector<torch::Tensor> Parameters() const;
  // Copies `state` into the model (warm start, resume). Every entry of
  // StateDict() must be present with the same shape, and nothing else.
  Status LoadStateDict(const NamedTensors& state);
  // Runs one forward pass on zeros [2, *sample_shape] in eval mode without
  // gradients (training mode is restored) and checks that it gives
  // [2, num_classes] logits: a mismatch is reported before training starts.
  Status Check(const std::vector<int64_t>& sample_shape, int64_t num_classes);
};

// The model a spec names, for samples of `sample_shape` with `num_classes`
// classes: builtin (built for that shape) or TorchScript (loaded, and its
// InputShape(), when it has one, must hold as many values as a sample). The
// result passed Check() for InputShape().value_or(sample_shape); the caller
// views its data that way (data/dataset.h, TensorDataset::ViewSamplesAs). Builtins are
// initialised from the current torch::manual_seed.
Result<std::unique_ptr<Model>> CreateModel(const ModelSpec& spec, const std::vector<int64_t>& sample_shape,
                                           int64_t num_classes);

// A builtin network behind the Model interface.
std::unique_ptr<Model> WrapSequential(torch::nn::Sequential net, std::string description,
                                      std::vector<int64_t> input_shape);

}  // namespace gantry::model
