// TorchScript models written in Python, trained from C++. The fixture
// modules are scripted by Debian's python3-torch (/usr/bin/python3, see
// Python(); the tests skip with the reason when it is missing).
#include "model/script_model.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "data/dataset.h"
#include "model/models.h"
#include "tests/support/data_test_util.h"

namespace gantry::model {
namespace {

using data_testing::Contains;
using data_testing::PathIn;
using data_testing::TempDir;
using data_testing::WriteFile;
using data::TensorDataset;

// Debian's interpreter, where python3-torch installs; $GANTRY_TEST_PYTHON
// overrides it (another Python with torch, or a missing one to see the skip).
std::string Python() {
  const char* p = std::getenv("GANTRY_TEST_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

// Net: own parameter registered after its children, batch norm buffers,
// dropout and an input_shape attribute. Pair returns a tuple. Frozen has no
// trainable parameters. state.txt holds state_dict() keys and value sums;
// params.txt the named_parameters() keys.
constexpr const char* kScript = R"PY(
import sys
from typing import List
import torch

out = sys.argv[1]

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16),
            torch.nn.ReLU(), torch.nn.Dropout(0.3))
        self.head = torch.nn.Linear(16, 3)
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.input_shape: List[int] = [2, 4]

    def forward(self, x):
        return self.head(self.body(x)) * self.scale

class Pair(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x):
        y = self.fc(x.flatten(1))
        return y, y

torch.manual_seed(0)
net = Net()
torch.jit.script(net).save(out + "/net.pt")
with open(out + "/state.txt", "w") as f:
    for k, v in net.state_dict().items():
        f.write("%s %.6f\n" % (k, v.double().sum().item()))
with open(out + "/params.txt", "w") as f:
    for k, _ in net.named_parameters():
        f.write(k + "\n")
torch.jit.script(Pair()).save(out + "/pair.pt")
frozen = Pair()
for p in frozen.parameters():
    p.requires_grad_(False)
torch.jit.script(frozen).save(out + "/frozen.pt")
)PY";

class ScriptModelTest : public ::testing::Test {
 protected:
  // Scripts the fixtures once for the suite; an empty reason means ready.
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    const std::string log = PathIn(*dir_, "python.log");
    if (std::system((Python() + " -c 'import torch' >" + log + " 2>&1").c_str()) != 0) {
      skip_ = "needs " + Python() + " with torch (apt-get install python3-torch) to script the fixture";
      return;
    }
    WriteFile(PathIn(*dir_, "make.py"), kScript);
    std::string cmd = Python() + " " + PathIn(*dir_, "make.py") + " " + dir_->path() + " >" + log + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      std::ifstream in(log);
      std::stringstream ss;
      ss << in.rdbuf();
      failure_ = "scripting the fixture failed: " + ss.str();
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(failure_.empty()) << failure_;
  }
  static std::string Fixture(const std::string& name) { return PathIn(*dir_, name); }

  static std::vector<std::string> Lines(const std::string& name) {
    std::ifstream in(Fixture(name));
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string skip_;
  static inline std::string failure_;
};

std::vector<std::string> Names(const NamedTensors& t) {
  std::vector<std::string> out;
  for (const auto& [name, tensor] : t) out.push_back(name);
  return out;
}

TEST_F(ScriptModelTest, NamesAndValuesMatchPythonStateDict) {
  auto m = ScriptModel::Load(Fixture("net.pt"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  std::vector<std::string> keys;
  std::vector<double> sums;
  for (const auto& line : Lines("state.txt")) {
    std::istringstream in(line);
    std::string k;
    double s = 0;
    in >> k >> s;
    keys.push_back(k);
    sums.push_back(s);
  }
  ASSERT_EQ(keys.size(), 10u);  // scale, 2 Linear x 2, BatchNorm: 2 parameters + 3 buffers
  NamedTensors state = (*m)->StateDict();
  EXPECT_EQ(Names(state), keys);
  for (size_t i = 0; i < state.size() && i < sums.size(); ++i) {
    EXPECT_NEAR(state[i].second.to(torch::kFloat64).sum().item<double>(), sums[i], 1e-4) << keys[i];
  }
  EXPECT_EQ(Names((*m)->NamedParameters()), Lines("params.txt"));
  EXPECT_EQ(Names((*m)->NamedBuffers()),
            (std::vector<std::string>{"body.2.running_mean", "body.2.running_var", "body.2.num_batches_tracked"}));
  EXPECT_EQ((*m)->InputShape(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ((*m)->Describe(), "torchscript " + Fixture("net.pt"));
}

TEST_F(ScriptModelTest, TrainsFromCppAndLossDecreases) {
  // 3 classes, each the argmax of a fixed linear view of 8 inputs.
  torch::manual_seed(7);
  auto x = torch::randn({128, 8});
  auto labels = x.matmul(torch::randn({8, 3})).argmax(1);
  ModelSpec spec;
  spec.torchscript = Fixture("net.pt");
  for (const char* name : {"sgd", "adamw"}) {
    // Flat CSV-like samples [8]; the model's input_shape [2, 4] decides.
    TensorDataset data{x.clone(), labels, 3};
    auto m = CreateModel(spec, data.SampleShape(), data.num_classes);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_TRUE(data.ViewSamplesAs(*(*m)->InputShape()).ok());
    Model& model = **m;
    // The optimizers BuildOptimizer (worker/optimizer.h) makes for sgd and adamw.
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    if (std::string(name) == "sgd") {
      optimizer = std::make_unique<torch::optim::SGD>(model.Parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    } else {
      optimizer = std::make_unique<torch::optim::AdamW>(model.Parameters(), torch::optim::AdamWOptions(0.01));
    }
    auto* opt = &optimizer;
    const torch::Tensor running_mean = model.NamedBuffers()[0].second.clone();
    model.SetTraining(true);
    std::vector<double> losses;
    for (int step = 0; step < 40; ++step) {
      auto idx = torch::randperm(128, torch::kInt64).narrow(0, 0, 32);
      (*opt)->zero_grad();
      auto logits = model.Forward(data.features.index_select(0, idx));
      ASSERT_TRUE(logits.ok()) << logits.status().ToString();
      auto loss = torch::nn::functional::cross_entropy(*logits, labels.index_select(0, idx));
      loss.backward();
      (*opt)->step();
      losses.push_back(loss.item<double>());
    }
    const double first = (losses[0] + losses[1] + losses[2]) / 3;
    const double last = (losses[37] + losses[38] + losses[39]) / 3;
    EXPECT_LT(last, 0.6 * first) << name << ": " << first << " -> " << last;
    // Batch norm statistics moved in training mode.
    EXPECT_FALSE(model.NamedBuffers()[0].second.equal(running_mean)) << name;

    // Eval mode: dropout off and statistics frozen, so forward is repeatable.
    model.SetTraining(false);
    EXPECT_FALSE(model.training());
    torch::NoGradGuard no_grad;
    auto a = model.Forward(data.features);
    auto b = model.Forward(data.features);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(a->equal(*b));
    const double accuracy = a->argmax(1).eq(labels).to(torch::kFloat64).mean().item<double>();
    EXPECT_GT(accuracy, 0.6) << name;
  }
}

TEST_F(ScriptModelTest, RefusesDataItCannotTake) {
  ModelSpec spec;
  spec.torchscript = Fixture("net.pt");
  auto wrong_size = CreateModel(spec, {7}, 3);
  ASSERT_FALSE(wrong_size.ok());
  EXPECT_TRUE(Contains(wrong_size.status().message(), "expects samples of shape [2, 4] (8 values) but the data's "
                                                      "samples are [7] (7 values)"))
      << wrong_size.status().message();
  auto wrong_classes = CreateModel(spec, {8}, 5);
  ASSERT_FALSE(wrong_classes.ok());
  EXPECT_TRUE(Contains(wrong_classes.status().message(), "returned [2, 3] Float; expected float logits [2, 5]"))
      << wrong_classes.status().message();
}

TEST_F(ScriptModelTest, RefusesUnusableModules) {
  auto pair = ScriptModel::Load(Fixture("pair.pt"));
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  auto out = (*pair)->Forward(torch::zeros({2, 8}));
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(Contains(out.status().message(), "forward must return one Tensor of logits [B, classes] (got Tuple)"))
      << out.status().message();

  auto frozen = ScriptModel::Load(Fixture("frozen.pt"));
  ASSERT_FALSE(frozen.ok());
  EXPECT_TRUE(Contains(frozen.status().message(), "no parameters that require gradients"))
      << frozen.status().message();

  WriteFile(Fixture("junk.pt"), "not a zip archive");
  auto junk = ScriptModel::Load(Fixture("junk.pt"));
  ASSERT_FALSE(junk.ok());
  EXPECT_TRUE(Contains(junk.status().message(), "model.torchscript " + Fixture("junk.pt") +
                                                    ": cannot load as TorchScript"))
      << junk.status().message();
  EXPECT_TRUE(Contains(junk.status().message(), "torch.jit.save(torch.jit.script(model), PATH)"));
  EXPECT_FALSE(ScriptModel::Load(Fixture("missing.pt")).ok());
}

}  // namespace
}  // namespace gantry::model
