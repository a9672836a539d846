// The hot-reload slot: a batch in flight keeps its model, later batches take
// the new one, and swapping under concurrent load fails no request.
#include "serving/model_slot.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include "tests/serving/serving_test_util.h"

namespace gantry::serving {
namespace {
using testing::Gate;
using testing::Ready;

// Output row: [row sum, the model's version number]. So a response shows
// which model computed it, independently of the version string stamped on it.
class FakeModel : public Servable {
 public:
  explicit FakeModel(int version, Gate* gate = nullptr)
      : version_(std::to_string(version)), number_(static_cast<float>(version)), gate_(gate) {}
  const std::string& version() const override { return version_; }
  Result<std::vector<float>> Forward(const BatchInput& in) const override {
    if (gate_ != nullptr) gate_->Pass();
    std::vector<float> out;
    for (size_t r = 0; r < in.rows; ++r) {
      float sum = 0;
      for (size_t c = 0; c < in.row_size; ++c) sum += in.data[r * in.row_size + c];
      out.push_back(sum);
      out.push_back(number_);
    }
    return out;
  }

 private:
  std::string version_;
  float number_;
  Gate* gate_;
};

BatcherOptions Opts() {
  BatcherOptions o;
  o.row_size = 3;
  o.max_batch = 16;
  o.max_queued_rows = 1 << 16;
  o.max_queued_requests = 1 << 16;
  return o;
}

TEST(ModelSlot, EmptySlotIsUnavailable) {
  ModelSlot<Servable> slot;
  Batcher b(Opts(), SlotBatchFn(slot));
  auto r = b.Submit(std::vector<float>(3, 1.0f)).get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST(ModelSlot, InFlightBatchKeepsTheOldModel) {
  Gate gate;
  ModelSlot<Servable> slot(std::make_shared<FakeModel>(1, &gate));
  std::weak_ptr<const Servable> old = slot.Get();
  Batcher b(Opts(), SlotBatchFn(slot));
  auto first = b.Submit(std::vector<float>(3, 1.0f));
  ASSERT_TRUE(gate.WaitEntered(1));  // the batch runs on version 1
  slot.Swap(std::make_shared<FakeModel>(2));
  EXPECT_EQ(slot.generation(), 1u);
  EXPECT_FALSE(old.expired());  // held by the batch in flight
  gate.Open();
  ASSERT_TRUE(Ready(first));
  auto r1 = first.get();
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(r1->model_version, "1");
  EXPECT_EQ(r1->data, (std::vector<float>{3, 1}));
  auto r2 = b.Submit(std::vector<float>(3, 2.0f)).get();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->model_version, "2");
  EXPECT_EQ(r2->data, (std::vector<float>{6, 2}));
  EXPECT_TRUE(old.expired());  // released once no batch holds it
}

TEST(ModelSlot, SwapsUnderConcurrentLoadWithoutFailures) {
  constexpr int kClients = 8;
  constexpr int kPerClient = 300;
  constexpr int kSwaps = 10;
  ModelSlot<Servable> slot(std::make_shared<FakeModel>(0));
  Batcher b(Opts(), SlotBatchFn(slot));
  std::atomic<int> done{0}, failures{0}, mismatches{0};
  std::mutex seen_mu;
  std::set<std::string> seen;
  // Swap s is due once s/(kSwaps+1) of the load is done; clients hold back
  // until the due swaps happened, so every swap lands mid-load (no sleeps).
  auto target = [&](int s) { return s * kClients * kPerClient / (kSwaps + 1); };
  auto due = [&](int n) {
    int swaps = 0;
    while (swaps < kSwaps && target(swaps + 1) <= n) ++swaps;
    return static_cast<uint64_t>(swaps);
  };
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kPerClient; ++i) {
        while (slot.generation() < due(done.load())) std::this_thread::yield();
        const size_t rows = 1 + static_cast<size_t>((c + i) % 3);
        const float v = static_cast<float>(c * 1000 + i);
        auto r = b.Submit(std::vector<float>(rows * 3, v)).get();
        if (!r.ok()) {
          ++failures;
        } else {
          for (size_t k = 0; k < rows; ++k) {
            // Each row got its own sum, computed by the version the response names.
            if (r->data[2 * k] != 3 * v || std::to_string(static_cast<int>(r->data[2 * k + 1])) !=
                                               r->model_version)
              ++mismatches;
          }
          std::lock_guard<std::mutex> l(seen_mu);
          seen.insert(r->model_version);
        }
        ++done;
      }
    });
  }
  std::thread swapper([&] {
    for (int s = 1; s <= kSwaps; ++s) {
      while (done.load() < target(s)) std::this_thread::yield();
      slot.Swap(std::make_shared<FakeModel>(s));
    }
  });
  for (auto& t : clients) t.join();
  swapper.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(done.load(), kClients * kPerClient);
  EXPECT_EQ(slot.generation(), static_cast<uint64_t>(kSwaps));
  EXPECT_EQ(seen.size(), static_cast<size_t>(kSwaps + 1)) << "every version served some load";
  EXPECT_EQ(b.Submit(std::vector<float>(3, 0.0f)).get()->model_version, std::to_string(kSwaps));
}

}  // namespace
}  // namespace gantry::serving
