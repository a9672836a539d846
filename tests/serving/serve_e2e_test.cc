// gantry-serve end to end: real gantry-storage, real gantry-serve processes,
// real Fashion-MNIST test images, HTTP on loopback.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "serving/infer_codec.h"
#include "serving/torch_servable.h"
#include "tests/serving/serve_test_env.h"

namespace gantry::serving::testing {
namespace {

constexpr int64_t kImages = 100;

// Logits of version `v` for raw images, through the training path: the
// model built from the checkpoint by gantry::model and the IDX reader's own
// preprocessing (data::LoadIdxDataset).
torch::Tensor ReferenceLogits(RegistryClient& client, const std::string& model, int64_t v, int64_t n) {
  auto loaded = client.Load(model, "v" + std::to_string(v));
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  auto net = model::ModelFromCheckpoint(loaded->manifest, loaded->tensors, loaded->Source());
  EXPECT_TRUE(net.ok()) << net.status().ToString();
  auto ds = data::LoadIdxDataset(TestImagesPath(), TestLabelsPath(), n);
  EXPECT_TRUE(ds.ok()) << ds.status().ToString();
  torch::NoGradGuard g;
  auto logits = (*net)->Forward(ds->images);
  EXPECT_TRUE(logits.ok());
  return *logits;
}

// The logits gantry-serve answers for image i, one request each.
torch::Tensor ServedLogits(uint16_t port, const std::string& model, const torch::Tensor& images,
                           std::string* version = nullptr) {
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < images.size(0); ++i) {
    Reply r = Post(port, "/v2/models/" + model + "/infer", InferBody(images.slice(0, i, i + 1)));
    EXPECT_EQ(r.status, 200) << r.body;
    auto resp = DecodeInferResponse(r.body);
    EXPECT_TRUE(resp.ok());
    if (!resp.ok() || resp->outputs.empty()) return {};
    if (version) *version = resp->model_version;
    const auto& d = std::get<std::vector<float>>(resp->outputs[0].data);
    rows.push_back(torch::tensor(d).reshape({1, -1}));
  }
  return torch::cat(rows);
}

bool HaveFashionMnist() { return std::filesystem::exists(TestImagesPath()); }

class ServeE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (BinDir().empty()) GTEST_SKIP() << "GANTRY_BIN_DIR is not set";
    if (!HaveFashionMnist()) GTEST_SKIP() << "Fashion-MNIST is not installed at " << kFashionDir;
    env.emplace();
    ASSERT_TRUE(env->ok());
    ASSERT_FALSE(env->feed().empty()) << "storage announces no registry feed";
  }
  std::optional<ServeEnv> env;
};

// Done-when: predictions for 100 Fashion-MNIST test images equal, class for
// class, those of the training path (LibTorch) and of Python torch running
// the exported weights of the same version, logits within 1e-4.
TEST_F(ServeE2E, PredictionsEqualLibTorchAndPythonTorch) {
  const int64_t v = env->SaveMlp("fashion", 7);
  uint16_t port = env->StartServe({"--model", "fashion@latest", "--max-batch", "16"}, "serve");
  ASSERT_NE(port, 0);
  EXPECT_EQ(env->ready_json()["models"][0]["name"], "fashion");
  EXPECT_EQ(env->ready_json()["models"][0]["version"], v);
  EXPECT_EQ(Fetch(port, "GET", "/v2/health/ready").status, 200);

  torch::Tensor images = RawTestImages(kImages);
  std::string version;
  torch::Tensor served = ServedLogits(port, "fashion", images, &version);
  ASSERT_EQ(served.size(0), kImages);
  EXPECT_EQ(version, std::to_string(v));
  torch::Tensor ref = ReferenceLogits(env->client(), "fashion", v, kImages);
  EXPECT_TRUE(torch::equal(served.argmax(1), ref.argmax(1)));
  EXPECT_LE((served - ref).abs().max().item<double>(), 1e-4);

  // Python torch on the exported state dict.
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3-torch is not installed (/usr/bin/python3): the comparison with Python torch did not run "
                    "(the LibTorch comparison above did)";
  }
  RpcClient rpc(env->ctx(), env->api());
  auto exported = rpc.Call("export_version", {{"model", "fashion"}, {"ref", "v" + std::to_string(v)}, {"format", "torch"}},
                           std::chrono::seconds(60));
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  const auto& bytes = (*exported)["data"].get_binary();
  const std::string pt = env->tmp() + "/fashion.pt", out = env->tmp() + "/torch.json";
  std::ofstream(pt, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const std::string cmd = "/usr/bin/python3 " GANTRY_TEST_SOURCE_DIR "/tests/serving/torch_reference.py " + pt + " " +
                          TestImagesPath() + " " + std::to_string(kImages) + " 32 " +
                          std::to_string(data::kPixelMean) + " " + std::to_string(data::kPixelStd) + " > " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  json py = json::parse(ReadText(out));
  ASSERT_EQ(py["logits"].size(), static_cast<size_t>(kImages));
  double worst = 0;
  int same_class = 0;
  for (int64_t i = 0; i < kImages; ++i) {
    std::vector<float> row = py["logits"][i].get<std::vector<float>>();
    torch::Tensor p = torch::tensor(row);
    worst = std::max(worst, (served[i] - p).abs().max().item<double>());
    same_class += served[i].argmax().item<int64_t>() == p.argmax().item<int64_t>();
  }
  EXPECT_EQ(same_class, kImages);
  EXPECT_LE(worst, 1e-4) << "python torch " << py["torch"];
}

// Done-when: the alias moves 10 times under load; zero failed requests, and
// every response's logits are those of the version it names.
TEST_F(ServeE2E, HotReloadUnderLoadFailsNoRequest) {
  std::vector<int64_t> versions = {env->SaveMlp("hot", 1), env->SaveMlp("hot", 2), env->SaveMlp("hot", 3)};
  ASSERT_TRUE(env->SetAlias("hot", "production", versions[0]).ok());
  uint16_t port = env->StartServe({"--model", "hot@production", "--max-batch", "8", "--max-delay-ms", "1"}, "hot");
  ASSERT_NE(port, 0);

  torch::Tensor image = RawTestImages(1);
  std::map<std::string, torch::Tensor> expected;
  for (int64_t v : versions) expected[std::to_string(v)] = ReferenceLogits(env->client(), "hot", v, 1)[0];

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, wrong{0};
  std::mutex mu;
  std::map<std::string, int> by_version;
  std::vector<std::thread> clients;
  const std::string body = InferBody(image);
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        Reply r = Post(port, "/v2/models/hot/infer", body);
        auto resp = DecodeInferResponse(r.body);
        if (r.status != 200 || !resp.ok()) {
          ++failed;
          continue;
        }
        ++ok;
        auto it = expected.find(resp->model_version);
        const auto& d = std::get<std::vector<float>>(resp->outputs[0].data);
        if (it == expected.end() || (torch::tensor(d) - it->second).abs().max().item<double>() > 1e-4) ++wrong;
        std::lock_guard<std::mutex> l(mu);
        ++by_version[resp->model_version];
      }
    });
  }
  auto served_version = [&] {
    json j = json::parse(Fetch(port, "GET", "/v2/models/hot/ready").body, nullptr, false);
    return j.is_object() ? j.value("model_version", "") : "";
  };
  for (int move = 1; move <= 10; ++move) {
    const int64_t target = versions[move % versions.size()];
    ASSERT_TRUE(env->SetAlias("hot", "production", target).ok());
    EXPECT_TRUE(WaitFor([&] { return served_version() == std::to_string(target); }, std::chrono::seconds(30)))
        << "move " << move << " to v" << target << " not served; log:\n" << env->ServeLog("hot");
    const int before = ok.load();
    WaitFor([&] { return ok.load() >= before + 20; }, std::chrono::seconds(10));  // some traffic per version
  }
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(ok.load(), 200);
  EXPECT_EQ(by_version.size(), versions.size());
  Reply metrics = Fetch(port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("gantry_serve_reloads_total{model=\"hot\"} 10"), std::string::npos) << metrics.body;

  // SIGTERM: a graceful stop, exit 0.
  env->last_serve().Signal(SIGTERM);
  std::optional<ExitInfo> exit;
  EXPECT_TRUE(WaitFor([&] { return (exit = env->last_serve().Poll()).has_value(); }, std::chrono::seconds(20)));
  if (exit) {
    EXPECT_TRUE(exit->ok()) << exit->ToString();
  }
}

TEST_F(ServeE2E, BadRequestsAreRefusedAndFeedbackGivesLiveAccuracy) {
  const int64_t v = env->SaveMlp("errs", 3);
  uint16_t port = env->StartServe({"--model", "errs@v" + std::to_string(v), "--max-batch", "4", "--max-body-mb", "1"}, "errs");
  ASSERT_NE(port, 0);
  const std::string infer = "/v2/models/errs/infer";
  auto error_of = [](const Reply& r) {
    json j = json::parse(r.body, nullptr, false);
    return j.is_object() ? j.value("error", "") + " @" + j.value("model_version", "") : r.body;
  };
  Reply shape = Post(port, infer, R"({"inputs":[{"name":"input","datatype":"FP32","shape":[1,5],"data":[1,2,3,4,5]}]})");
  EXPECT_EQ(shape.status, 400);
  EXPECT_NE(error_of(shape).find("inputs[0].shape"), std::string::npos) << shape.body;
  EXPECT_NE(error_of(shape).find("@" + std::to_string(v)), std::string::npos) << "error names the version";
  EXPECT_EQ(shape.headers["X-Model-Version"], std::to_string(v));
  json nan_data = std::vector<float>(784, 0.0f);
  nan_data[5] = "NaN";
  const std::string nan_body =
      json{{"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 784}}, {"data", nan_data}}}}}.dump();
  Reply nan = Post(port, infer, nan_body);
  EXPECT_EQ(nan.status, 400) << nan.body;
  EXPECT_NE(error_of(nan).find("NaN"), std::string::npos) << nan.body;
  Reply dtype = Post(port, infer, R"({"inputs":[{"name":"input","datatype":"FP99","shape":[1,784],"data":[]}]})");
  EXPECT_EQ(dtype.status, 400);
  EXPECT_NE(error_of(dtype).find("datatype"), std::string::npos);
  EXPECT_EQ(Post(port, "/v2/models/nope/infer", InferBody(RawTestImages(1))).status, 404);
  EXPECT_EQ(Fetch(port, "GET", "/v2/models/nope").status, 404);
  EXPECT_EQ(Post(port, infer, InferBody(RawTestImages(5))).status, 413) << "5 rows > max-batch 4";
  // Over --max-body-mb: the server answers 413 and closes; a client still
  // writing its body may see the close instead (status 0).
  const int big = Post(port, infer, std::string(2 << 20, ' ')).status;
  EXPECT_TRUE(big == 413 || big == 0) << big;
  // Still serving.
  Reply good = Post(port, infer, InferBody(RawTestImages(1), "req-1"));
  ASSERT_EQ(good.status, 200) << good.body;
  auto resp = DecodeInferResponse(good.body);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->id, "req-1");
  EXPECT_EQ(resp->model_version, std::to_string(v));
  const auto& d = std::get<std::vector<float>>(resp->outputs[0].data);
  const int64_t predicted = std::max_element(d.begin(), d.end()) - d.begin();
  Reply fb = Post(port, "/v2/models/errs/feedback", json{{"id", "req-1"}, {"label", predicted}}.dump());
  EXPECT_EQ(fb.status, 200) << fb.body;
  EXPECT_EQ(json::parse(fb.body)["accuracy"], 1.0);
  EXPECT_EQ(Post(port, "/v2/models/errs/feedback", json{{"id", "req-1"}, {"label", 0}}.dump()).status, 409);
  EXPECT_EQ(Post(port, "/v2/models/errs/feedback", json{{"id", "never"}, {"label", 0}}.dump()).status, 404);
  Reply meta = Fetch(port, "GET", "/v2/models/errs");
  EXPECT_EQ(meta.status, 200);
  EXPECT_NE(meta.body.find("[-1,1,28,28]"), std::string::npos) << meta.body;
  std::string m = Fetch(port, "GET", "/metrics").body;
  EXPECT_NE(m.find("gantry_serve_errors_total{model=\"errs\",code=\"400\"} 3"), std::string::npos) << m;
  EXPECT_NE(m.find("gantry_serve_input_non_finite_total{model=\"errs\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("gantry_serve_live_accuracy{model=\"errs\"} 1"), std::string::npos) << m;
}

// gantry-optimize --int8 makes a tagged child version with both accuracies;
// gantry-serve --int8 serves it and agrees with fp32 on most classes.
TEST_F(ServeE2E, Int8VersionIsMadeAndServed) {
  const int64_t v = env->SaveMlp("small", 5);
  SpawnOptions o;
  o.argv = {BinDir() + "/gantry-optimize", "--storage", env->api(), "small@v" + std::to_string(v), "--int8", "--json"};
  o.stdout_path = env->tmp() + "/optimize.out";
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok());
  ExitInfo exit = child->Wait();
  const std::string out = ReadText(env->tmp() + "/optimize.out");
  if (out.find("no quantized engine") != std::string::npos) GTEST_SKIP() << out;
  ASSERT_TRUE(exit.ok()) << out;
  json r = json::parse(out.substr(out.rfind('{')));
  const int64_t q = r["version"];
  EXPECT_EQ(r["parent_version"], v);
  RpcClient rpc(env->ctx(), env->api());
  auto shown = rpc.Call("show_version", {{"model", "small"}, {"ref", "v" + std::to_string(q)}});
  ASSERT_TRUE(shown.ok());
  const std::string s = shown->dump();
  EXPECT_NE(s.find("int8"), std::string::npos) << s;
  EXPECT_NE(s.find("parent_test_accuracy"), std::string::npos) << s;
  const double acc8 = r["test_accuracy"], acc32 = r["parent_test_accuracy"];
  EXPECT_NEAR(acc8, acc32, 0.02);

  uint16_t port = env->StartServe({"--model", "small@v" + std::to_string(q), "--int8"}, "int8");
  ASSERT_NE(port, 0);
  torch::Tensor images = RawTestImages(kImages);
  std::string version;
  torch::Tensor served = ServedLogits(port, "small", images, &version);
  ASSERT_EQ(served.size(0), kImages);
  EXPECT_EQ(version, std::to_string(q));
  torch::Tensor ref = ReferenceLogits(env->client(), "small", v, kImages);
  const int64_t agree = served.argmax(1).eq(ref.argmax(1)).sum().item<int64_t>();
  EXPECT_GE(agree, 95) << "int8 and fp32 agree on " << agree << " of 100";
  EXPECT_LE((served - ref).abs().max().item<double>(), 0.5);
}

}  // namespace
}  // namespace gantry::serving::testing
