// BuildOptimizer: the optimizer a job spec's train.optimizer names.
//
// Training-specific, so it lives with the training engine rather than with
// the model builders (model/models.h): serving builds models, never
// optimizers.
//
// Thread safety: a free function; the optimizer belongs to the caller.
#pragma once

#include <torch/optim/optimizer.h>

#include <memory>
#include <vector>

#include "common/job_spec.h"
#include "common/status.h"

namespace gantry::worker {

// SGD (momentum, weight decay), Adam or AdamW over `params`.
Result<std::unique_ptr<torch::optim::Optimizer>> BuildOptimizer(
    const OptimizerSpec& spec, const std::vector<torch::Tensor>& params);

}  // namespace gantry::worker
