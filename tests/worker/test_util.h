// Helpers for the worker tests: a temporary directory, IDX files written on
// the fly (plain or gzip), a synthetic learnable image dataset, and an
// in-process Communicator whose ranks are threads (gloo's BaseTest::spawn).
#pragma once

#include <zlib.h>

#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "tests/support/test_support.h"
#include "worker/communicator.h"

namespace gantry::worker::testing {

using TempDir = gantry::testing::TempDir;

// IDX header for unsigned bytes with `dims`.
inline std::string IdxHeader(const std::vector<uint32_t>& dims) {
  std::string h = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift : {24, 16, 8, 0}) h.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  return h;
}

inline void WriteBytes(const std::string& path, const std::string& bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary) << bytes;
  }
}

inline void WriteIdx(const std::string& path, const std::vector<uint32_t>& dims,
                     const std::vector<uint8_t>& data, bool gzip) {
  WriteBytes(path, IdxHeader(dims) + std::string(data.begin(), data.end()), gzip);
}

// n images of 28x28 where class k lights up row band k: learnable in a few steps.
inline void WriteSyntheticDataset(const std::string& dir, const std::string& prefix, uint32_t n) {
  std::vector<uint8_t> images(static_cast<size_t>(n) * 28 * 28);
  std::vector<uint8_t> labels(n);
  for (uint32_t i = 0; i < n; ++i) {
    labels[i] = static_cast<uint8_t>((i * 7) % 10);
    for (int r = 0; r < 28; ++r) {
      for (int c = 0; c < 28; ++c) {
        bool on = r / 3 == labels[i] || ((r * 31 + c * 17 + i) % 11 == 0);
        images[(static_cast<size_t>(i) * 28 + r) * 28 + c] = on ? 220 : 10;
      }
    }
  }
  WriteIdx(dir + "/" + prefix + "-images-idx3-ubyte.gz", {n, 28, 28}, images, true);
  WriteIdx(dir + "/" + prefix + "-labels-idx1-ubyte.gz", {n}, labels, true);
}

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
