// Communicator: the collectives a data-parallel rank needs, behind a small
// interface so the transport can change (MPI for CPU tensors, NCCL for CUDA
// tensors) without touching the training loop. Tests substitute an
// in-process fake (gloo's transport/ and horovod's Controller are the models).
//
// Contract: every rank of the group issues the same collectives in the same
// order with tensors of the same dtype and numel (asynchronous ones count
// in the order they are *started*). Tensors must be contiguous and live on
// the communicator's device. Errors come back as Status, never exceptions.
//
// Asynchronous collectives: AllreduceSumAsync() starts a reduction and
// returns a Work; the tensor must stay alive and untouched until Wait()
// returns. Backends without a progress engine of their own may complete the
// work inside AllreduceSumAsync() (the default below does).
//
// Thread safety: one calling thread per Communicator. A backend may run the
// collectives on an internal thread, which is why Work::Wait() is the only
// point where the tensor's contents are defined again.
#pragma once

#include <torch/types.h>

#include <memory>

#include "common/status.h"

namespace gantry::worker {

// One started collective. Wait() blocks until it is complete on this rank.
class Work {
 public:
  virtual ~Work() = default;
  virtual Status Wait() = 0;
};

// A Work that was complete when it was created.
class DoneWork final : public Work {
 public:
  explicit DoneWork(Status s) : status_(std::move(s)) {}
  Status Wait() override { return status_; }

 private:
  Status status_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Elementwise sum over all ranks, written back into `t` on every rank.
  virtual Status AllreduceSum(torch::Tensor& t) = 0;
  // Copies root's `t` into `t` on every other rank.
  virtual Status Broadcast(torch::Tensor& t, int root) = 0;
  // Starts AllreduceSum(t). The default runs it synchronously.
  virtual std::unique_ptr<Work> AllreduceSumAsync(torch::Tensor t) {
    return std::make_unique<DoneWork>(AllreduceSum(t));
  }
};

// Broadcasts a byte string from `root` (length first, then the bytes).
Status BroadcastBytes(Communicator& comm, std::string& bytes, int root);

}  // namespace gantry::worker
