// BuildOptimizer (worker/optimizer.h): every optimizer the job spec names
// builds, and trains a builtin model together with the learning-rate
// schedule.
#include "worker/optimizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/model.h"
#include "model/models.h"
#include "worker/lr_schedule.h"

namespace gantry::worker {
namespace {

TEST(Optimizer, BuildsEveryKnownOptimizerAndRefusesOthers) {
  ModelSpec spec;
  spec.builtin = "mlp";
  auto mlp = model::BuildSequential(spec, {1, 28, 28}, 10);
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

TEST(Optimizer, BuiltinModelTrainsWithEveryOptimizerAndSchedule) {
  // Two Gaussian blobs per class in 5 dimensions.
  torch::manual_seed(3);
  auto labels = torch::arange(96, torch::kInt64).remainder(3);
  auto x = torch::randn({96, 5}) * 0.3 + torch::one_hot(labels, 5).to(torch::kFloat32) * 2;
  for (const char* name : {"sgd", "adam", "adamw"}) {
    torch::manual_seed(4);
    ModelSpec mlp;
    mlp.builtin = "mlp";
    mlp.hidden = {16};
    auto m = model::CreateModel(mlp, {5}, 3);
    ASSERT_TRUE(m.ok());
    OptimizerSpec o;
    o.name = name;
    o.lr = std::string(name) == "sgd" ? 0.1 : 0.02;
    auto opt = BuildOptimizer(o, (*m)->Parameters());
    ASSERT_TRUE(opt.ok());
    LrScheduleSpec ls;
    ls.name = "cosine";
    ls.warmup_steps = 5;
    auto sched = LrSchedule::Create(ls, o.lr);
    ASSERT_TRUE(sched.ok());
    double first = 0, last = 0;
    for (int64_t step = 1; step <= 40; ++step) {
      sched->Apply(**opt, step, 40);
      (*opt)->zero_grad();
      auto loss = torch::nn::functional::cross_entropy(*(*m)->Forward(x), labels);
      loss.backward();
      (*opt)->step();
      if (step == 1) first = loss.item<double>();
      last = loss.item<double>();
    }
    EXPECT_LT(last, 0.5 * first) << name << ": " << first << " -> " << last;
  }
}

}  // namespace
}  // namespace gantry::worker
