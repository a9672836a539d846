// Optimizer state as named tensors, for exact resume.
//
// Names: "optimizer/<parameter name>/<field>", e.g.
//   optimizer/1.weight/momentum_buffer                 (SGD with momentum)
//   optimizer/1.weight/exp_avg, .../exp_avg_sq,
//   .../max_exp_avg_sq (amsgrad only), .../step        (Adam, AdamW; step is
//                                                        an int64 scalar)
// The "optimizer/" prefix is the storage service's marker for non-model
// tensors, so an exported state dict holds parameters only. A parameter
// with no state yet (before its first step) has no tensors. Hyper-parameters
// (lr, momentum, ...) come from the job spec, not from the checkpoint.
//
// Thread safety: free functions; the caller owns the optimizer.
#pragma once

#include <torch/optim/optimizer.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace gantry::worker {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

inline constexpr char kOptimizerTensorPrefix[] = "optimizer/";

// The state of every parameter in `params` (the optimizer's
// parameters with their checkpoint names), as detached views of the live
// tensors: encode them before the next optimizer step. Fails for optimizer types whose
// state Gantry does not know (SGD, Adam and AdamW are supported).
Result<NamedTensors> SaveOptimizerState(torch::optim::Optimizer& optimizer, const NamedTensors& params);

// Replaces the optimizer's state with the "optimizer/..." entries of
// `saved`, bit for bit. Parameters without saved state start fresh.
Status RestoreOptimizerState(torch::optim::Optimizer& optimizer, const NamedTensors& params,
                             const std::map<std::string, torch::Tensor>& saved);

}  // namespace gantry::worker
