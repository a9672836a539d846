// Builtin models, built from a job spec's `model` block.
//
// Models are torch::nn::Sequential so that parameter names ("1.weight",
// "3.bias", ...) match the same nn.Sequential in PyTorch: a checkpoint
// exported as a state dict loads there without renaming.
//   mlp: Flatten -> [Linear(h_i) -> ReLU]* -> Linear(classes)
//   cnn: [Conv3x3(16) ReLU MaxPool2] [Conv3x3(32) ReLU MaxPool2] Flatten
//        Linear(hidden[0] or 128) ReLU Linear(classes)
// The mlp takes samples of any shape (flattened); the cnn needs images
// [channels, rows, cols]. Initial parameters come from LibTorch's default
// initialisation under the caller's torch::manual_seed. model.h wraps these
// (and TorchScript modules) behind one Model interface.
//
// Thread safety: free functions; the returned objects belong to the caller.
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include <string>
#include <vector>

#include "common/job_spec.h"
#include "common/status.h"

namespace gantry::model {

// `sample_shape` is one input sample without the batch dimension ([1, 28, 28]
// for Fashion-MNIST, [F] for F CSV features); the model outputs
// `num_classes` logits.
Result<torch::nn::Sequential> BuildSequential(const ModelSpec& spec, const std::vector<int64_t>& sample_shape,
                                              int64_t num_classes);

// "[1, 28, 28]", for messages.
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace gantry::model
