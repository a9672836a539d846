// Shared helpers of the serving tests: a gate that holds a BatchFn until the
// test opens it, and a BatchFn that records batch sizes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <numeric>
#include <vector>

#include "serving/batcher.h"
#include "tests/support/test_support.h"

namespace gantry::serving::testing {
using gantry::testing::WaitFor;

// Blocks callers of Pass() until Open(); counts who entered.
class Gate {
 public:
  void Pass() {
    std::unique_lock<std::mutex> l(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(l, [&] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits (with a deadline) until n callers have entered.
  bool WaitEntered(int n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(10), [&] { return entered_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int entered_ = 0;
};

// Output row = the sum of the input row; records each batch's rows. Copies
// share the record (a BatchFn is copied into the batcher).
class SumFn {
 public:
  explicit SumFn(Gate* gate = nullptr) : gate_(gate), state_(std::make_shared<State>()) {}
  Result<BatchOutput> operator()(const BatchInput& in) const {
    {
      std::lock_guard<std::mutex> l(state_->mu);
      state_->sizes.push_back(in.rows);
    }
    if (gate_ != nullptr) gate_->Pass();
    BatchOutput out;
    out.model_version = "v";
    for (size_t r = 0; r < in.rows; ++r) {
      const float* row = in.data.data() + r * in.row_size;
      out.data.push_back(std::accumulate(row, row + in.row_size, 0.0f));
    }
    return out;
  }
  std::vector<size_t> sizes() const {
    std::lock_guard<std::mutex> l(state_->mu);
    return state_->sizes;
  }

 private:
  struct State {
    std::mutex mu;
    std::vector<size_t> sizes;
  };
  Gate* gate_;
  std::shared_ptr<State> state_;
};

template <typename T>
bool Ready(const std::future<T>& f, std::chrono::seconds timeout = std::chrono::seconds(10)) {
  return f.wait_for(timeout) == std::future_status::ready;
}

}  // namespace gantry::serving::testing
