// Helpers for the worker tests: a temporary directory, the IDX and dataset
// writers of tests/support/data_test_util.h, and an in-process Communicator
// whose ranks are threads (gloo's BaseTest::spawn).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "tests/support/test_support.h"
#include "tests/support/data_test_util.h"
#include "worker/communicator.h"

namespace gantry::worker::testing {

using data_testing::IdxHeader;
using data_testing::WriteBytes;
using data_testing::WriteIdx;
using data_testing::WriteSyntheticDataset;

using TempDir = gantry::testing::TempDir;

// Ranks are threads sharing one ThreadGroup. Each collective waits for all
// ranks; the last to arrive computes the result, then everyone copies it.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), inputs_(size) {}
  int size() const { return size_; }

  Status Collective(int rank, torch::Tensor& t, int root) {
    std::unique_lock<std::mutex> l(mu_);
    const int64_t gen = generation_;
    inputs_[rank] = t;
    if (++arrived_ == size_) {
      if (root >= 0) {
        result_ = inputs_[root].clone();
      } else {
        result_ = inputs_[0].clone();
        for (int r = 1; r < size_; ++r) result_.add_(inputs_[r]);
      }
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(l, [&] { return generation_ != gen; });
    }
    // Still under the lock: the next collective cannot complete (and replace
    // result_) before this rank has arrived at it.
    t.copy_(result_);
    return Status::Ok();
  }

 private:
  const int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<torch::Tensor> inputs_;  // GUARDED_BY(mu_)
  torch::Tensor result_;               // GUARDED_BY(mu_)
  int arrived_ = 0;                    // GUARDED_BY(mu_)
  int64_t generation_ = 0;             // GUARDED_BY(mu_)
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }
  Status AllreduceSum(torch::Tensor& t) override { return group_.Collective(rank_, t, -1); }
  Status Broadcast(torch::Tensor& t, int root) override { return group_.Collective(rank_, t, root); }

 private:
  ThreadGroup& group_;
  int rank_;
};

}  // namespace gantry::worker::testing
