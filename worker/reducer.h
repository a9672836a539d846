// Reducer: makes every rank's gradients the mean over all ranks, reducing
// gradient buckets while backward still runs (the PyTorch DDP design).
//
// Protocol of one step (every rank runs it identically):
//   1. Prepare() before backward arms the hooks and clears the step state.
//   2. During backward, a hook on each parameter copies its gradient into
//      its bucket's flat buffer. Buckets hold parameters in *reverse*
//      registration order (backward produces the last layer's gradients
//      first) up to Options::bucket_bytes each.
//   3. With overlap on, a bucket whose gradients are all in is started
//      (Communicator::AllreduceSumAsync) as soon as every bucket before it
//      has been started: buckets are always started in index order, so all
//      ranks issue the same collectives in the same order even if autograd
//      finishes gradients in a different order on some rank.
//   4. Finalize() after backward starts what is left (with overlap off:
//      everything; parameters that got no gradient contribute zeros), waits
//      for every bucket, divides by the world size and writes the mean into
//      each parameter's .grad. The optimizer step may run after it returns.
// Finalize() replaces .grad, so gradients must be zeroed (or None) before
// each backward, as the trainer's optimizer.zero_grad() does.
//
// Thread safety: hooks run on the autograd engine's thread (the caller's
// for CPU tensors, a device thread for CUDA); mu_ serialises them with
// Prepare()/Finalize(). The Communicator and the parameters must outlive the
// Reducer; its destructor removes the hooks.
#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <mutex>
#include <vector>

#include "worker/communicator.h"

namespace gantry::worker {

class Reducer {
 public:
  // Bucket size when the job spec says 0 (train.bucket_mb). Smaller buckets
  // start reducing earlier (more overlap with backward) but cost more
  // collectives. On the 2-core reference machine overlap does not pay: the
  // communication thread competes with backward for the same cores, and a
  // 2.7 MB-gradient MLP stepped fastest with one 25 MiB bucket (0.67x the
  // step time of 1 MiB buckets; docs/performance.md, "Worker"). 25 MiB is
  // also PyTorch DDP's default; with free cores (or NCCL) smaller buckets win.
  static constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;

  struct Options {
    int64_t bucket_bytes = kDefaultBucketBytes;
    bool overlap = true;  // start buckets during backward (train.overlap)
  };

  struct StepStats {
    double wait_seconds = 0;  // blocked in Finalize(): the exposed communication
    int buckets_started_early = 0;  // buckets started while backward still ran
  };

  // `params`: the tensors whose .grad() is averaged, in the same order on
  // every rank. All must require grad.
  static Result<std::unique_ptr<Reducer>> Create(Communicator& comm, std::vector<torch::Tensor> params,
                                                 Options options);
  ~Reducer();
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  void Prepare();
  Status Finalize();

  int64_t numel() const { return numel_; }
  size_t num_buckets() const { return buckets_.size(); }
  const StepStats& last_step() const { return stats_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_, in bucket order
    torch::Tensor flat;
    size_t pending = 0;          // gradients still missing this step
    bool started = false;
    std::unique_ptr<Work> work;
  };
  struct Slot {  // where a parameter's gradient lives
    size_t bucket = 0;
    int64_t offset = 0;
    bool seen = false;  // gradient arrived this step
  };

  Reducer(Communicator& comm, std::vector<torch::Tensor> params, Options options);
  void BuildBuckets();
  void OnGradient(size_t index, const torch::Tensor& grad);
  // REQUIRES: mu_ held. Starts ready buckets in index order.
  void StartReady();

  Communicator& comm_;
  std::vector<torch::Tensor> params_;
  Options options_;
  int64_t numel_ = 0;
  std::vector<unsigned> hooks_;

  std::mutex mu_;
  std::vector<Bucket> buckets_;  // GUARDED_BY(mu_)
  std::vector<Slot> slots_;      // GUARDED_BY(mu_)
  size_t next_to_start_ = 0;     // GUARDED_BY(mu_)
  bool armed_ = false;           // GUARDED_BY(mu_)
  Status error_;                 // GUARDED_BY(mu_): first hook failure of the step
  StepStats stats_;
};

// Copies rank 0's parameters and buffers of `module` to every rank.
Status BroadcastParameters(Communicator& comm, torch::nn::Module& module);
// The same for a plain list of tensors (same order on every rank).
Status BroadcastTensors(Communicator& comm, const std::vector<torch::Tensor>& tensors);

}  // namespace gantry::worker
