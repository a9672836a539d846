// Reducer: bucket layout, overlap, unused parameters, and the averaged
// result, with ranks as threads (ThreadCommunicator) and a communicator
// that records when buckets start.
#include "worker/reducer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "tests/worker/test_util.h"

namespace gantry::worker {
namespace {

// One rank that records each reduction's numel and whether it came while
// backward was still running (before Finalize()); `sync` counts those
// issued through the blocking AllreduceSum.
class RecordingComm final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  Status AllreduceSum(torch::Tensor& t) override {
    started.push_back({t.numel(), in_backward});
    ++sync;
    return Status::Ok();
  }
  Status Broadcast(torch::Tensor&, int) override { return Status::Ok(); }
  std::unique_ptr<Work> AllreduceSumAsync(torch::Tensor t) override {
    started.push_back({t.numel(), in_backward});
    return std::make_unique<DoneWork>(Status::Ok());
  }
  std::vector<std::pair<int64_t, bool>> started;
  bool in_backward = false;
  int sync = 0;
};

torch::nn::Sequential Mlp() {
  torch::manual_seed(3);
  return torch::nn::Sequential(torch::nn::Linear(8, 16), torch::nn::ReLU(), torch::nn::Linear(16, 4));
}

TEST(Reducer, BucketsFollowReverseParameterOrderAndStartDuringBackward) {
  auto model = Mlp();
  RecordingComm comm;
  // 16*4 + 4 floats = 272 bytes for the last layer: a 300-byte cap gives
  // buckets {2.bias, 2.weight}, {0.bias}, {0.weight}.
  auto r = Reducer::Create(comm, model->parameters(), {300, true});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->num_buckets(), 3u);
  (*r)->Prepare();
  comm.in_backward = true;
  model->forward(torch::randn({5, 8})).sum().backward();
  comm.in_backward = false;
  ASSERT_TRUE((*r)->Finalize().ok());
  ASSERT_EQ(comm.started.size(), 3u);
  EXPECT_EQ(comm.started[0].first, 16 * 4 + 4);
  EXPECT_EQ(comm.started[1].first, 16);
  EXPECT_EQ(comm.started[2].first, 8 * 16);
  for (const auto& s : comm.started) EXPECT_TRUE(s.second) << "bucket of " << s.first << " started late";
  EXPECT_EQ(comm.sync, 0);
  EXPECT_EQ((*r)->last_step().buckets_started_early, 3);
}

TEST(Reducer, OverlapOffStartsEverythingAfterBackward) {
  auto model = Mlp();
  RecordingComm comm;
  auto r = Reducer::Create(comm, model->parameters(), {300, false});
  ASSERT_TRUE(r.ok());
  (*r)->Prepare();
  comm.in_backward = true;
  model->forward(torch::randn({5, 8})).sum().backward();
  comm.in_backward = false;
  ASSERT_TRUE((*r)->Finalize().ok());
  ASSERT_EQ(comm.started.size(), 3u);
  for (const auto& s : comm.started) EXPECT_FALSE(s.second);
  // Nothing in flight after backward: reduced in place, no hand-off.
  EXPECT_EQ(comm.sync, 3);
  EXPECT_EQ(comm.started[0].first, 16 * 4 + 4);
}

// Two ranks with different data: every rank ends with the mean gradient,
// and a parameter unused on this step gets a zero gradient on both.
TEST(Reducer, AveragesOverRanksAndZeroFillsUnusedParameters) {
  testing::ThreadGroup group(2);
  std::vector<torch::Tensor> grads(2), expected_parts(2), unused(2);
  auto rank_main = [&](int rank) {
    testing::ThreadCommunicator comm(group, rank);
    auto model = Mlp();
    auto extra = torch::nn::Linear(3, 3);  // never used in forward
    auto params = model->parameters();
    for (auto& p : extra->parameters()) params.push_back(p);
    auto r = Reducer::Create(comm, params, {64, true});
    ASSERT_TRUE(r.ok());
    torch::Tensor x = torch::full({4, 8}, static_cast<float>(rank + 1));
    (*r)->Prepare();
    model->forward(x).pow(2).sum().backward();
    expected_parts[rank] = params[0].grad().clone();  // before averaging: this rank's own
    ASSERT_TRUE((*r)->Finalize().ok());
    grads[rank] = params[0].grad().clone();
    unused[rank] = extra->weight.grad().clone();
  };
  std::thread a(rank_main, 0), b(rank_main, 1);
  a.join();
  b.join();
  torch::Tensor mean = (expected_parts[0] + expected_parts[1]) / 2;
  EXPECT_TRUE(torch::allclose(grads[0], mean));
  EXPECT_TRUE(torch::equal(grads[0], grads[1]));
  EXPECT_EQ(unused[0].abs().sum().item<float>(), 0.0f);
}

TEST(Reducer, BackwardTwiceInOneStepIsAnError) {
  auto model = Mlp();
  RecordingComm comm;
  auto r = Reducer::Create(comm, model->parameters(), {1 << 20, true});
  ASSERT_TRUE(r.ok());
  (*r)->Prepare();
  model->forward(torch::randn({2, 8})).sum().backward();
  model->forward(torch::randn({2, 8})).sum().backward();
  Status st = (*r)->Finalize();
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
}

TEST(Reducer, RefusesAZeroBucket) {
  auto model = Mlp();
  RecordingComm comm;
  EXPECT_EQ(Reducer::Create(comm, model->parameters(), {0, true}).status().code(), StatusCode::kInvalidArgument);
}

TEST(Reducer, BroadcastParametersCopiesRankZero) {
  testing::ThreadGroup group(2);
  std::vector<torch::Tensor> weights(2);
  auto rank_main = [&](int rank) {
    testing::ThreadCommunicator comm(group, rank);
    torch::nn::Linear layer(3, 2);
    {
      torch::NoGradGuard g;
      layer->weight.fill_(static_cast<float>(rank + 1));
    }
    EXPECT_TRUE(BroadcastParameters(comm, *layer).ok());
    weights[rank] = layer->weight.detach().clone();
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join();
  t1.join();
  EXPECT_TRUE(weights[1].equal(torch::ones({2, 3})));
}

}  // namespace
}  // namespace gantry::worker
