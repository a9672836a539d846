// Communicator: the collectives a data-parallel rank needs, behind a small
// interface so the transport can change (MPI for CPU tensors now; NCCL for
// CUDA tensors later) without touching the training loop. Tests substitute an
// in-process fake (gloo's transport/ and horovod's Controller are the models).
//
// Contract: every rank of the group calls the same collectives in the same
// order with tensors of the same dtype and numel; a collective returns only
// when this rank's part is complete. Tensors must be contiguous and live on
// the communicator's device. Errors come back as Status, never exceptions.
//
// Thread safety: one thread per Communicator (collectives are ordered).
#pragma once

#include <torch/types.h>

#include "common/status.h"

namespace gantry::worker {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Elementwise sum over all ranks, written back into `t` on every rank.
  virtual Status AllreduceSum(torch::Tensor& t) = 0;
  // Copies root's `t` into `t` on every other rank.
  virtual Status Broadcast(torch::Tensor& t, int root) = 0;
};

}  // namespace gantry::worker
