#include "worker/optimizer.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

namespace gantry::worker {

Result<std::unique_ptr<torch::optim::Optimizer>> BuildOptimizer(
    const OptimizerSpec& spec, const std::vector<torch::Tensor>& params) {
  try {
    if (spec.name == "sgd") {
      return std::unique_ptr<torch::optim::Optimizer>(new torch::optim::SGD(
          params,
          torch::optim::SGDOptions(spec.lr).momentum(spec.momentum).weight_decay(spec.weight_decay)));
    }
    if (spec.name == "adam") {
      return std::unique_ptr<torch::optim::Optimizer>(new torch::optim::Adam(
          params, torch::optim::AdamOptions(spec.lr).weight_decay(spec.weight_decay)));
    }
    if (spec.name == "adamw") {
      return std::unique_ptr<torch::optim::Optimizer>(new torch::optim::AdamW(
          params, torch::optim::AdamWOptions(spec.lr).weight_decay(spec.weight_decay)));
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("job spec: train.optimizer: ") + e.what());
  }
  return Status::InvalidArgument("job spec: train.optimizer.name must be one of sgd, adam, adamw (got '" +
                                 spec.name + "')");
}

}  // namespace gantry::worker
