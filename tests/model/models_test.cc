#include "model/models.h"

#include <gtest/gtest.h>
#include <torch/torch.h>


namespace gantry::model {
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
  auto net = BuildSequential(spec, {1, 28, 28}, 10);
  ASSERT_TRUE(net.ok()) << net.status().ToString();
  EXPECT_EQ((*net)->forward(torch::zeros({5, 1, 28, 28})).sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(CountParameters(**net), 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  // nn.Sequential names, as PyTorch's state dict spells them.
  auto names = (*net)->named_parameters().keys();
  EXPECT_EQ(names.front(), "1.weight");
  EXPECT_EQ(names.back(), "5.bias");

  spec.hidden = {};
  auto linear = BuildSequential(spec, {1, 28, 28}, 10);
  ASSERT_TRUE(linear.ok());
  EXPECT_EQ(CountParameters(**linear), 784 * 10 + 10);
}

TEST(Models, CnnShapes) {
  ModelSpec spec;
  spec.builtin = "cnn";
  spec.hidden = {64};
  auto net = BuildSequential(spec, {1, 28, 28}, 10);
  ASSERT_TRUE(net.ok()) << net.status().ToString();
  EXPECT_EQ((*net)->forward(torch::zeros({3, 1, 28, 28})).sizes(), (std::vector<int64_t>{3, 10}));
  auto odd = BuildSequential(spec, {1, 30, 17}, 10);  // pooling floors odd sizes
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ((*odd)->forward(torch::zeros({2, 1, 30, 17})).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(Models, RefusesUnknownModels) {
  ModelSpec spec;
  spec.builtin = "transformer";
  auto net = BuildSequential(spec, {1, 28, 28}, 10);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("model.builtin"), std::string::npos);
  ModelSpec script;
  script.torchscript = "/models/net.pt";
  EXPECT_FALSE(BuildSequential(script, {1, 28, 28}, 10).ok());
}

}  // namespace
}  // namespace gantry::model
