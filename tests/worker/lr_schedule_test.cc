#include "worker/lr_schedule.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace gantry::worker {
namespace {

LrSchedule Make(const std::string& name, double base, int64_t warmup, int64_t step_size = 0,
                double gamma = 0.1, double min_lr = 0) {
  LrScheduleSpec spec;
  spec.name = name;
  spec.warmup_steps = warmup;
  spec.step_size = step_size;
  spec.gamma = gamma;
  spec.min_lr = min_lr;
  auto s = LrSchedule::Create(spec, base);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

TEST(LrSchedule, ConstantWithLinearWarmup) {
  LrSchedule s = Make("constant", 0.1, 4);
  EXPECT_DOUBLE_EQ(s.At(1, 100), 0.025);
  EXPECT_DOUBLE_EQ(s.At(2, 100), 0.05);
  EXPECT_DOUBLE_EQ(s.At(4, 100), 0.1);
  EXPECT_DOUBLE_EQ(s.At(5, 100), 0.1);
  EXPECT_DOUBLE_EQ(s.At(100, 100), 0.1);
  EXPECT_DOUBLE_EQ(Make("constant", 0.1, 0).At(1, 100), 0.1);
}

TEST(LrSchedule, StepDecayCountsFromTheEndOfWarmup) {
  LrSchedule s = Make("step", 1.0, 0, 3, 0.5);
  for (int64_t step : {1, 2, 3}) EXPECT_DOUBLE_EQ(s.At(step, 100), 1.0) << step;
  EXPECT_DOUBLE_EQ(s.At(4, 100), 0.5);
  EXPECT_DOUBLE_EQ(s.At(6, 100), 0.5);
  EXPECT_DOUBLE_EQ(s.At(7, 100), 0.25);

  LrSchedule w = Make("step", 1.0, 2, 3, 0.5);
  EXPECT_DOUBLE_EQ(w.At(1, 100), 0.5);
  EXPECT_DOUBLE_EQ(w.At(3, 100), 1.0);
  EXPECT_DOUBLE_EQ(w.At(5, 100), 1.0);
  EXPECT_DOUBLE_EQ(w.At(6, 100), 0.5);
}

TEST(LrSchedule, CosineEndsAtMinLr) {
  // warm-up 10, then 101 steps: d runs 0..100, so step 61 is halfway.
  LrSchedule s = Make("cosine", 1.0, 10, 0, 0.1, 0.1);
  EXPECT_DOUBLE_EQ(s.At(5, 111), 0.5);
  EXPECT_DOUBLE_EQ(s.At(11, 111), 1.0);
  EXPECT_NEAR(s.At(61, 111), 0.55, 1e-12);
  EXPECT_NEAR(s.At(111, 111), 0.1, 1e-12);
  EXPECT_NEAR(s.At(500, 111), 0.1, 1e-12);  // past the end: stays at the floor
  double prev = 2.0;
  for (int64_t step = 11; step <= 111; ++step) {
    EXPECT_LT(s.At(step, 111), prev) << step;
    prev = s.At(step, 111);
  }
  // Nothing left after warm-up to anneal over.
  EXPECT_DOUBLE_EQ(Make("cosine", 1.0, 10).At(11, 11), 1.0);
}

TEST(LrSchedule, RefusesBadSpecsNamingTheField) {
  LrScheduleSpec spec;
  spec.name = "step";
  auto s = LrSchedule::Create(spec, 0.1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("train.lr_schedule.step_size must be > 0"), std::string::npos);
  spec.name = "cosine";
  spec.min_lr = 0.5;
  s = LrSchedule::Create(spec, 0.1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("train.lr_schedule.min_lr"), std::string::npos);
  spec.name = "linear";
  s = LrSchedule::Create(spec, 0.1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("train.lr_schedule.name"), std::string::npos);
  spec.name = "constant";
  EXPECT_FALSE(LrSchedule::Create(spec, 0).ok());
}

TEST(LrSchedule, ApplySetsEveryParamGroupAndTheStepUsesIt) {
  auto a = torch::ones({1}, torch::requires_grad());
  auto b = torch::ones({1}, torch::requires_grad());
  torch::optim::SGD opt({a}, torch::optim::SGDOptions(1.0));
  opt.add_param_group(torch::optim::OptimizerParamGroup({b}));
  LrSchedule s = Make("constant", 1.0, 4);
  EXPECT_DOUBLE_EQ(s.Apply(opt, 1, 10), 0.25);
  for (auto& g : opt.param_groups()) EXPECT_DOUBLE_EQ(g.options().get_lr(), 0.25);
  a.mutable_grad() = torch::ones({1});
  b.mutable_grad() = torch::ones({1});
  opt.step();
  EXPECT_FLOAT_EQ(a.item<float>(), 0.75f);
  EXPECT_FLOAT_EQ(b.item<float>(), 0.75f);
}

}  // namespace
}  // namespace gantry::worker
