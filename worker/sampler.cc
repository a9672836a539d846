#include "worker/sampler.h"

#include <cassert>
#include <string>
#include <utility>

namespace gantry::worker {
namespace {

// splitmix64: tiny, fast, well mixed, and fully specified (unlike the
// distributions of <random>, whose output differs between libraries).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound), without modulo bias (rejection sampling).
  uint64_t Below(uint64_t bound) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do {
      x = Next();
    } while (x >= limit);
    return x % bound;
  }

 private:
  uint64_t state_;
};

}  // namespace

Result<DistributedSampler> DistributedSampler::Create(int64_t num_samples, int64_t batch_size,
                                                      int rank, int world, uint64_t seed) {
  if (world <= 0 || rank < 0 || rank >= world) {
    return Status::InvalidArgument("sampler: rank " + std::to_string(rank) + " of world " +
                                   std::to_string(world) + " is out of range");
  }
  if (batch_size <= 0) {
    return Status::InvalidArgument("job spec: train.batch_size must be > 0 (got " +
                                   std::to_string(batch_size) + ")");
  }
  if (num_samples < batch_size * world) {
    return Status::InvalidArgument(
        "job spec: train.batch_size " + std::to_string(batch_size) + " x " +
        std::to_string(world) + " workers needs at least " + std::to_string(batch_size * world) +
        " training samples (have " + std::to_string(num_samples) +
        "; lower train.batch_size or raise data.limit)");
  }
  return DistributedSampler(num_samples, batch_size, rank, world, seed);
}

std::vector<int64_t> DistributedSampler::Permutation(int64_t epoch) const {
  std::vector<int64_t> perm(static_cast<size_t>(num_samples_));
  for (int64_t i = 0; i < num_samples_; ++i) perm[i] = i;
  // Distinct epochs get unrelated streams: mix the epoch into the seed.
  SplitMix64 rng(seed_ ^ (0xd1b54a32d192ed03ULL * static_cast<uint64_t>(epoch + 1)));
  for (int64_t i = num_samples_ - 1; i > 0; --i) {
    auto j = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(i + 1)));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

std::vector<int64_t> DistributedSampler::BatchAt(int64_t epoch, int64_t offset) {
  if (epoch != cached_epoch_) {
    cached_ = Permutation(epoch);
    cached_epoch_ = epoch;
  }
  assert(HasBatchAt(offset));
  int64_t begin = offset + rank_ * batch_size_;
  return {cached_.begin() + begin, cached_.begin() + begin + batch_size_};
}

}  // namespace gantry::worker
