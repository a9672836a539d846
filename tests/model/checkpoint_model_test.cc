// Building a model from a checkpoint's manifest and tensors
// (model/checkpoint_model.h): what warm start, resume and serving rely on.
#include "model/checkpoint_model.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace gantry::model {
namespace {

bool Has(const Status& st, const std::string& part) { return st.message().find(part) != std::string::npos; }

ModelManifest Mlp(std::vector<int64_t> hidden) {
  ModelManifest m;
  m.builtin = "mlp";
  m.hidden = std::move(hidden);
  m.input_shape = {5};
  m.num_classes = 3;
  return m;
}

// The weights of a freshly built model, plus training state that must be
// ignored.
TensorMap SavedFrom(const ModelManifest& m) {
  auto model = CreateModel(m.ToSpec(), m.input_shape, m.num_classes);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  TensorMap out;
  for (const auto& [name, t] : (*model)->StateDict()) out[name] = t.detach().clone();
  out["optimizer/1.weight/momentum_buffer"] = torch::ones({1});
  out["trainer/rng/cpu/rank0"] = torch::zeros({4}, torch::kUInt8);
  return out;
}

TEST(CheckpointModel, BuildsTheManifestsModelWithTheSavedWeights) {
  torch::manual_seed(1);
  const ModelManifest m = Mlp({8});
  TensorMap saved = SavedFrom(m);
  torch::manual_seed(2);  // another initialisation: the weights must come from `saved`
  auto model = ModelFromCheckpoint(m, saved, "m@v1");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_FALSE((*model)->training());
  for (const auto& [name, t] : (*model)->StateDict()) EXPECT_TRUE(t.equal(saved.at(name))) << name;
  auto logits = (*model)->Forward(torch::zeros({4, 5}));
  ASSERT_TRUE(logits.ok());
  EXPECT_EQ(logits->sizes(), (std::vector<int64_t>{4, 3}));
}

TEST(CheckpointModel, NamesWhatDoesNotFit) {
  TensorMap saved = SavedFrom(Mlp({8}));
  // Another width: every mismatching shape is listed.
  auto wider = ModelFromCheckpoint(Mlp({16}), saved, "m@v1");
  ASSERT_FALSE(wider.ok());
  EXPECT_EQ(wider.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Has(wider.status(), "checkpoint m@v1")) << wider.status().message();
  EXPECT_TRUE(Has(wider.status(), "1.weight [8, 5] vs [16, 5]")) << wider.status().message();
  // A missing weight.
  TensorMap missing = saved;
  missing.erase("3.bias");
  auto st = ModelFromCheckpoint(Mlp({8}), missing, "m@v2").status();
  EXPECT_TRUE(Has(st, "missing: 3.bias")) << st.message();
  // Another dtype would load silently converted.
  TensorMap doubles = saved;
  doubles["1.bias"] = doubles["1.bias"].to(torch::kFloat64);
  st = ModelFromCheckpoint(Mlp({8}), doubles, "m@v3").status();
  EXPECT_TRUE(Has(st, "'1.bias' is Double")) << st.message();
}

TEST(CheckpointModel, RefusesAnIncompleteManifest) {
  TensorMap saved = SavedFrom(Mlp({8}));
  ModelManifest none = Mlp({8});
  none.builtin = "";
  EXPECT_TRUE(Has(ModelFromCheckpoint(none, saved, "m@v1").status(), "no model_builtin"));
  ModelManifest script = Mlp({8});
  script.builtin = "torchscript";
  EXPECT_TRUE(Has(ModelFromCheckpoint(script, saved, "m@v1").status(), "model_torchscript"));
  ModelManifest shapeless = Mlp({8});
  shapeless.input_shape.clear();
  EXPECT_TRUE(Has(ModelFromCheckpoint(shapeless, saved, "m@v1").status(), "input_shape"));
}

TEST(CheckpointModel, LoadWeightsKeepsTheModelAndIgnoresTrainingState) {
  torch::manual_seed(1);
  TensorMap saved = SavedFrom(Mlp({8}));
  torch::manual_seed(2);
  auto model = CreateModel(Mlp({8}).ToSpec(), {5}, 3);
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(LoadWeights(**model, saved, "m@v1").ok());
  EXPECT_TRUE((*model)->StateDict()[0].second.equal(saved.at("1.weight")));
  EXPECT_TRUE(IsWeightName("1.weight"));
  EXPECT_FALSE(IsWeightName("optimizer/1.weight/exp_avg"));
  EXPECT_FALSE(IsWeightName("trainer/rng/cpu/rank0"));
}

}  // namespace
}  // namespace gantry::model
