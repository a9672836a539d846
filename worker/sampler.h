// DistributedSampler: which training samples each rank uses at each step.
//
// Every epoch has a permutation of [0, N) drawn from (seed, epoch) with
// Gantry's own generator (splitmix64 + Fisher-Yates), so it is identical on
// every rank and every build, independent of the standard library; a
// resumed job can rebuild any position from (epoch, step) alone.
// Global batch s of an epoch is permutation[s*B*W, (s+1)*B*W); rank r takes
// its slice [r*B, (r+1)*B) of it. More generally a position is (epoch,
// offset): the global batch starting at permutation[offset] (BatchAt), which
// is how a job resumed with another number of ranks continues from the same
// global sample. The tail that does not fill a global
// batch is dropped (a different tail each epoch), so the ranks' batches of
// one epoch are disjoint and every rank runs the same number of steps.
//
// Thread safety: not thread-safe (caches the current epoch's permutation).
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace gantry::worker {

class DistributedSampler {
 public:
  // Fails when one global batch (batch_size * world) does not fit in N.
  static Result<DistributedSampler> Create(int64_t num_samples, int64_t batch_size, int rank,
                                           int world, uint64_t seed);

  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t batch_size() const { return batch_size_; }
  int64_t num_samples() const { return num_samples_; }
  int64_t global_batch() const { return batch_size_ * world_; }
  // Indices of this rank's batch at `step` (0-based, < steps_per_epoch).
  std::vector<int64_t> Batch(int64_t epoch, int64_t step) { return BatchAt(epoch, step * global_batch()); }
  // This rank's batch of the global batch that starts at permutation[offset]
  // of `epoch`. REQUIRES: HasBatchAt(offset).
  std::vector<int64_t> BatchAt(int64_t epoch, int64_t offset);
  // Whether a whole global batch fits from `offset` (else the epoch is over).
  bool HasBatchAt(int64_t offset) const { return offset >= 0 && offset + global_batch() <= num_samples_; }
  // The full permutation of `epoch` (same on every rank).
  std::vector<int64_t> Permutation(int64_t epoch) const;

 private:
  DistributedSampler(int64_t n, int64_t b, int rank, int world, uint64_t seed)
      : num_samples_(n), batch_size_(b), rank_(rank), world_(world), seed_(seed),
        steps_per_epoch_(n / (b * world)) {}

  int64_t num_samples_;
  int64_t batch_size_;
  int rank_;
  int world_;
  uint64_t seed_;
  int64_t steps_per_epoch_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> cached_;
};

}  // namespace gantry::worker
