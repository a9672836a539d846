#include "worker/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace gantry::worker {
namespace {

DistributedSampler Make(int64_t n, int64_t b, int rank, int world, uint64_t seed = 7) {
  auto s = DistributedSampler::Create(n, b, rank, world, seed);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

TEST(DistributedSampler, StepsPerEpochDropsTheTail) {
  EXPECT_EQ(Make(1000, 10, 0, 3).steps_per_epoch(), 33);  // floor(1000 / 30)
  EXPECT_EQ(Make(60000, 64, 1, 2).steps_per_epoch(), 468);
  EXPECT_EQ(Make(8, 8, 0, 1).steps_per_epoch(), 1);
}

TEST(DistributedSampler, RefusesTooFewSamples) {
  auto s = DistributedSampler::Create(100, 64, 0, 2, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("train.batch_size"), std::string::npos);
  EXPECT_FALSE(DistributedSampler::Create(100, 4, 2, 2, 1).ok());
  EXPECT_FALSE(DistributedSampler::Create(100, 0, 0, 1, 1).ok());
}

TEST(DistributedSampler, PermutationIsDeterministicPerSeedAndEpoch) {
  auto a = Make(500, 5, 0, 2, 42);
  auto b = Make(500, 5, 1, 2, 42);
  EXPECT_EQ(a.Permutation(3), b.Permutation(3));  // every rank agrees
  EXPECT_NE(a.Permutation(0), a.Permutation(1));  // epochs reshuffle
  EXPECT_NE(a.Permutation(0), Make(500, 5, 0, 2, 43).Permutation(0));
  auto p = a.Permutation(5);
  std::sort(p.begin(), p.end());
  for (int64_t i = 0; i < 500; ++i) ASSERT_EQ(p[i], i);
  // Pinned values (also computed by an independent Python splitmix64): the
  // order must never change between builds, or resumed jobs would not be exact.
  EXPECT_EQ(Make(10, 1, 0, 1, 42).Permutation(0), (std::vector<int64_t>{7, 5, 8, 0, 9, 6, 2, 1, 4, 3}));
  EXPECT_EQ(Make(10, 1, 0, 1, 42).Permutation(1), (std::vector<int64_t>{9, 0, 3, 8, 1, 2, 6, 7, 5, 4}));
}

TEST(DistributedSampler, ShardsPartitionTheEpoch) {
  const int world = 3;
  const int64_t n = 1000;
  const int64_t b = 7;
  std::vector<DistributedSampler> ranks;
  for (int r = 0; r < world; ++r) ranks.push_back(Make(n, b, r, world));
  const int64_t steps = ranks[0].steps_per_epoch();
  for (int64_t epoch : {0, 1}) {
    std::set<int64_t> seen;
    for (int64_t s = 0; s < steps; ++s) {
      for (auto& rank : ranks) {
        auto batch = rank.Batch(epoch, s);
        ASSERT_EQ(static_cast<int64_t>(batch.size()), b);
        for (int64_t i : batch) {
          ASSERT_GE(i, 0);
          ASSERT_LT(i, n);
          EXPECT_TRUE(seen.insert(i).second) << "index " << i << " used twice in epoch " << epoch;
        }
      }
    }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), steps * b * world);
  }
  // The same (epoch, step) gives the same batch, whatever was asked before.
  auto first = ranks[1].Batch(0, 4);
  (void)ranks[1].Batch(1, 0);
  EXPECT_EQ(ranks[1].Batch(0, 4), first);
}

}  // namespace
}  // namespace gantry::worker
