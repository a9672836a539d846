#include "model/model.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/models.h"

namespace gantry::model {
namespace {

std::vector<std::string> Names(const NamedTensors& t) {
  std::vector<std::string> out;
  for (const auto& [name, tensor] : t) out.push_back(name);
  return out;
}

bool Has(const Status& st, const std::string& part) { return st.message().find(part) != std::string::npos; }

ModelSpec Builtin(const std::string& name, std::vector<int64_t> hidden) {
  ModelSpec spec;
  spec.builtin = name;
  spec.hidden = std::move(hidden);
  return spec;
}

TEST(Model, BuiltinMlpFitsCsvShapedData) {
  torch::manual_seed(1);
  auto m = CreateModel(Builtin("mlp", {16}), {5}, 3);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  Model& model = **m;
  EXPECT_EQ(model.Describe(), "mlp [16]");
  EXPECT_EQ(model.InputShape(), (std::vector<int64_t>{5}));
  auto out = model.Forward(torch::zeros({4, 5}));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(Names(model.NamedParameters()), (std::vector<std::string>{"1.weight", "1.bias", "3.weight", "3.bias"}));
  EXPECT_EQ(model.Parameters().size(), 4u);
  EXPECT_TRUE(model.NamedBuffers().empty());

  // A wrongly shaped batch is a Status, not an exception.
  auto bad = model.Forward(torch::zeros({4, 6}));
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Has(bad.status(), "model mlp [16]: forward failed")) << bad.status().message();
}

TEST(Model, BuiltinCnnTakesChannelsAndRefusesFlatSamples) {
  auto cnn = CreateModel(Builtin("cnn", {8}), {3, 9, 8}, 4);
  ASSERT_TRUE(cnn.ok()) << cnn.status().ToString();
  EXPECT_EQ((*cnn)->Describe(), "cnn [8]");
  auto out = (*cnn)->Forward(torch::zeros({2, 3, 9, 8}));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->sizes(), (std::vector<int64_t>{2, 4}));

  auto flat = CreateModel(Builtin("cnn", {}), {784}, 10);
  ASSERT_FALSE(flat.ok());
  EXPECT_TRUE(Has(flat.status(), "model.builtin cnn needs image samples [channels, rows, cols] but the data gives [784]"))
      << flat.status().message();
  auto unknown = CreateModel(Builtin("resnet", {}), {784}, 10);
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(Has(unknown.status(), "model.builtin must be one of mlp, cnn"));
}

// Linear -> BatchNorm1d -> Linear: parameters and buffers interleave per module.
std::unique_ptr<Model> WithBatchNorm() {
  torch::nn::Sequential net(torch::nn::Linear(4, 6), torch::nn::BatchNorm1d(6), torch::nn::Linear(6, 2));
  return WrapSequential(net, "bn-net", {4});
}

TEST(Model, StateDictFollowsPyTorchOrderAndLoadsBack) {
  torch::manual_seed(1);
  auto a = WithBatchNorm();
  EXPECT_EQ(Names(a->StateDict()),
            (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                      "1.num_batches_tracked", "2.weight", "2.bias"}));
  EXPECT_EQ(Names(a->NamedBuffers()),
            (std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked"}));
  {
    torch::NoGradGuard g;
    a->StateDict()[4].second.fill_(0.5);  // running_mean: a live tensor of the model
  }
  torch::manual_seed(2);
  auto b = WithBatchNorm();
  ASSERT_TRUE(b->LoadStateDict(a->StateDict()).ok());
  a->SetTraining(false);
  b->SetTraining(false);
  auto x = torch::randn({3, 4});
  EXPECT_TRUE(a->Forward(x)->equal(*b->Forward(x)));
  EXPECT_TRUE(b->NamedBuffers()[0].second.equal(torch::full({6}, 0.5f)));

  NamedTensors state = a->StateDict();
  state.pop_back();
  state.emplace_back("3.weight", torch::zeros({1}));
  state[0].second = torch::zeros({5, 4});
  Status st = b->LoadStateDict(state);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Has(st, "missing: 2.bias")) << st.message();
  EXPECT_TRUE(Has(st, "unexpected: 3.weight")) << st.message();
  EXPECT_TRUE(Has(st, "0.weight [5, 4] vs [6, 4]")) << st.message();
}

TEST(Model, CheckReportsWrongClassCountAndKeepsTrainingMode) {
  auto m = WithBatchNorm();
  m->SetTraining(true);
  Status st = m->Check({4}, 3);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Has(st, "model bn-net: forward on a batch of shape [2, 4] returned [2, 2]")) << st.message();
  EXPECT_TRUE(Has(st, "expected float logits [2, 3] for the data's 3 classes")) << st.message();
  EXPECT_TRUE(m->training());
  EXPECT_TRUE(m->Check({4}, 2).ok());
  st = m->Check({5}, 2);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Has(st, "does the model expect samples of shape [5]?")) << st.message();
}

}  // namespace
}  // namespace gantry::model
