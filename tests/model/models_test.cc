#include "worker/models.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "tests/worker/test_util.h"
#include "worker/checkpoint_client.h"
#include "worker/reducer.h"
#include "worker/metrics_publisher.h"

namespace gantry::worker {
namespace {

int64_t CountParameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

TEST(Models, MlpShapes) {
  ModelSpec spec;
  spec.builtin = "mlp";
  spec.hidden = {256, 128};
  auto net = BuildModel(spec, 28, 28);
  ASSERT_TRUE(net.ok()) << net.status().ToString();
  EXPECT_EQ((*net)->forward(torch::zeros({5, 1, 28, 28})).sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(CountParameters(**net), 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  // nn.Sequential names, as PyTorch's state dict spells them.
  auto names = (*net)->named_parameters().keys();
  EXPECT_EQ(names.front(), "1.weight");
  EXPECT_EQ(names.back(), "5.bias");

  spec.hidden = {};
  auto linear = BuildModel(spec, 28, 28);
  ASSERT_TRUE(linear.ok());
  EXPECT_EQ(CountParameters(**linear), 784 * 10 + 10);
}

TEST(Models, CnnShapes) {
  ModelSpec spec;
  spec.builtin = "cnn";
  spec.hidden = {64};
  auto net = BuildModel(spec, 28, 28);
  ASSERT_TRUE(net.ok()) << net.status().ToString();
  EXPECT_EQ((*net)->forward(torch::zeros({3, 1, 28, 28})).sizes(), (std::vector<int64_t>{3, 10}));
  auto odd = BuildModel(spec, 30, 17);  // pooling floors odd sizes
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ((*odd)->forward(torch::zeros({2, 1, 30, 17})).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(Models, RefusesUnknownModelsAndOptimizers) {
  ModelSpec spec;
  spec.builtin = "transformer";
  auto net = BuildModel(spec, 28, 28);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("model.builtin"), std::string::npos);

  spec.builtin = "mlp";
  auto mlp = BuildModel(spec, 28, 28);
  ASSERT_TRUE(mlp.ok());
  for (const char* name : {"sgd", "adam", "adamw"}) {
    OptimizerSpec o;
    o.name = name;
    EXPECT_TRUE(BuildOptimizer(o, (*mlp)->parameters()).ok()) << name;
  }
  OptimizerSpec bad;
  bad.name = "lion";
  auto opt = BuildOptimizer(bad, (*mlp)->parameters());
  ASSERT_FALSE(opt.ok());
  EXPECT_NE(opt.status().message().find("train.optimizer.name"), std::string::npos);
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

TEST(CheckpointClient, EncodesTensorsAsRawBytes) {
  auto f = TensorToJson("w", torch::arange(6, torch::kFloat32).view({2, 3}).t());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)["dtype"], "float32");
  EXPECT_EQ((*f)["shape"], json::array({3, 2}));
  const auto& bytes = (*f)["data"].get_binary();
  ASSERT_EQ(bytes.size(), 24u);
  float v[6];
  std::memcpy(v, bytes.data(), sizeof v);
  EXPECT_EQ(v[1], 3.0f);  // transposed, then made contiguous
  for (auto [dtype, name] : {std::pair{torch::kFloat64, "float64"}, {torch::kInt64, "int64"},
                             {torch::kInt32, "int32"}, {torch::kUInt8, "uint8"}}) {
    auto t = TensorToJson("t", torch::zeros({2}, dtype));
    ASSERT_TRUE(t.ok());
    EXPECT_EQ((*t)["dtype"], name);
  }
  EXPECT_FALSE(TensorToJson("h", torch::zeros({2}, torch::kFloat16)).ok());
}

TEST(MetricsPublisher, EncodesOneMsgpackFrame) {
  MetricsPoint p;
  p.step = 20;
  p.total_steps = 100;
  p.time = 1.7e9;
  p.values = {{"loss", 0.5}};
  auto j = ParseMsgpack(MetricsPublisher::Encode({"j-1", 2, 0, 4}, p));
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["v"], 1);
  EXPECT_EQ((*j)["type"], "metrics");
  EXPECT_EQ((*j)["body"]["job_id"], "j-1");
  EXPECT_EQ((*j)["body"]["attempt"], 2);
  EXPECT_EQ((*j)["body"]["world_size"], 4);
  EXPECT_EQ((*j)["body"]["step"], 20);
  EXPECT_EQ((*j)["body"]["values"]["loss"], 0.5);
}

}  // namespace
}  // namespace gantry::worker
