// Builtin models and optimizers, built from a job spec.
//
// Models are torch::nn::Sequential so that parameter names ("0.weight",
// "3.bias", ...) match the same nn.Sequential in PyTorch: a checkpoint
// exported as a state dict loads there without renaming.
//   mlp: Flatten -> [Linear(h_i) -> ReLU]* -> Linear(kNumClasses)
//   cnn: [Conv3x3(16) ReLU MaxPool2] [Conv3x3(32) ReLU MaxPool2] Flatten
//        Linear(hidden[0] or 128) ReLU Linear(kNumClasses)
// Initial parameters come from LibTorch's default initialisation under the
// caller's torch::manual_seed.
//
// Thread safety: free functions; the returned objects belong to the caller.
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/optim/optimizer.h>

#include <memory>

#include "common/job_spec.h"
#include "common/status.h"

namespace gantry::worker {

// `rows` x `cols` is the input image size (28 x 28 for Fashion-MNIST).
Result<torch::nn::Sequential> BuildModel(const ModelSpec& spec, int64_t rows, int64_t cols);

// SGD (momentum, weight decay), Adam or AdamW over `params`.
Result<std::unique_ptr<torch::optim::Optimizer>> BuildOptimizer(
    const OptimizerSpec& spec, const std::vector<torch::Tensor>& params);

}  // namespace gantry::worker
