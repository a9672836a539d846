// GradientAverager: makes every rank's gradients the mean over all ranks.
//
// After backward, Average() copies all gradients into one contiguous flat
// buffer (one collective instead of one per tensor), sums it across ranks
// with the Communicator, divides by the world size and copies it back. A
// parameter without a gradient contributes zeros (and gets a zero gradient)
// so that every rank reduces the same layout.
// Later milestones split the buffer into buckets reduced while backward
// still runs (PyTorch DDP); the interface stays the same.
//
// BroadcastParameters() makes every rank start from rank 0's parameters and
// buffers, whatever each rank's RNG produced.
//
// Thread safety: one thread; the Communicator must outlive the averager.
#pragma once

#include <torch/nn/module.h>

#include <vector>

#include "worker/communicator.h"

namespace gantry::worker {

class GradientAverager {
 public:
  // `params` are the tensors whose .grad() is averaged (same order on all ranks).
  GradientAverager(Communicator& comm, std::vector<torch::Tensor> params);

  Status Average();
  int64_t numel() const { return numel_; }

 private:
  Communicator& comm_;
  std::vector<torch::Tensor> params_;
  int64_t numel_ = 0;
  torch::Tensor flat_;  // reused between steps; allocated on first use
};

// Copies rank 0's parameters and buffers of `module` to every rank.
Status BroadcastParameters(Communicator& comm, torch::nn::Module& module);

}  // namespace gantry::worker
