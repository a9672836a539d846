// The serving integration tests' environment: a real gantry-storage on a
// free port, mlp versions saved into it, and gantry-serve processes started
// with the flags `gantry deploy` uses (found through their ready file).
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/data_dir.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/rpc.h"
#include "data/idx_reader.h"
#include "model/checkpoint_model.h"
#include "model/model.h"
#include "serving/registry_client.h"
#include "tests/monitor/http_test_client.h"
#include "tests/support/test_support.h"

namespace gantry::serving::testing {

using gantry::testing::BinDir;
using gantry::testing::TempDir;
using gantry::testing::WaitFor;
using http::testing::Fetch;
using http::testing::Reply;

inline std::string ReadText(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : "";
}

inline constexpr const char* kFashionDir = "/usr/share/datasets/fashion-mnist";
inline const std::vector<int64_t> kHidden = {32};

inline std::string TestImagesPath() { return std::string(kFashionDir) + "/t10k-images-idx3-ubyte.gz"; }
inline std::string TestLabelsPath() { return std::string(kFashionDir) + "/t10k-labels-idx1-ubyte.gz"; }

// An mlp [32] for 1x28x28 images with seed-dependent weights.
inline model::TensorMap MakeMlpWeights(uint64_t seed) {
  torch::manual_seed(seed);
  ModelSpec spec;
  spec.builtin = "mlp";
  spec.hidden = kHidden;
  auto m = model::CreateModel(spec, {1, 28, 28}, 10);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  model::TensorMap out;
  for (const auto& [name, t] : (*m)->StateDict()) out[name] = t.detach().clone();
  return out;
}

inline json MlpMeta() {
  return {{"model", "mlp [32]"},
          {"model_builtin", "mlp"},
          {"model_hidden", kHidden},
          {"input_shape", {1, 28, 28}},
          {"num_classes", 10},
          {"normalize", {{"mean", data::kPixelMean}, {"std", data::kPixelStd}}}};
}

class ServeEnv {
 public:
  ServeEnv() {
    SpawnOptions o;
    o.argv = {BinDir() + "/gantry-storage", "--data-dir", data_, "--bind", "tcp://127.0.0.1:0", "--log-level", "warn"};
    o.stdout_path = tmp_.File("storage.out");
    auto child = ChildProcess::Spawn(o);
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    if (!child.ok()) return;
    storage_.emplace(std::move(child).value());
    DataDir dir(data_);
    WaitFor([&] {
      if (storage_->Poll()) return true;
      auto info = dir.ReadServiceInfo(kStorage);
      if (info.ok()) {
        api_ = info->endpoints["api"];
        feed_ = info->endpoints["feed"];
      }
      return info.ok();
    }, std::chrono::seconds(20));
    EXPECT_FALSE(api_.empty()) << ReadText(tmp_.File("storage.out"));
    if (!api_.empty()) client_.emplace(ctx_, api_);
  }
  ~ServeEnv() {
    for (auto& s : serves_) s.Terminate(std::chrono::seconds(10));
    if (storage_) storage_->Terminate(std::chrono::seconds(10));
  }

  bool ok() const { return client_.has_value(); }
  const std::string& api() const { return api_; }
  const std::string& feed() const { return feed_; }
  const std::string& tmp() const { return tmp_.path(); }
  RegistryClient& client() { return *client_; }
  zmq::context_t& ctx() { return ctx_; }

  // Saves an mlp version of `model`; returns its number.
  int64_t SaveMlp(const std::string& model, uint64_t seed) {
    DerivedVersion v;
    v.model = model;
    v.meta = MlpMeta();
    v.tensors = MakeMlpWeights(seed);
    auto saved = client_->Save(v);
    EXPECT_TRUE(saved.ok()) << saved.status().ToString();
    return saved.ok() ? *saved : 0;
  }

  Status SetAlias(const std::string& model, const std::string& alias, int64_t version) {
    RpcClient rpc(ctx_, api_);
    auto r = rpc.Call("set_alias", {{"model", model}, {"alias", alias}, {"ref", "v" + std::to_string(version)}});
    return r.ok() ? Status::Ok() : r.status();
  }

  // Starts gantry-serve with `args` (after --storage) and waits for its
  // ready file; returns the HTTP port (0 on failure).
  uint16_t StartServe(std::vector<std::string> args, const std::string& tag) {
    const std::string ready = tmp_.File(tag + ".ready");
    SpawnOptions o;
    o.argv = {BinDir() + "/gantry-serve", "--storage", api_, "--port", "0", "--ready-file", ready,
              "--log-level", "warn"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.stdout_path = tmp_.File(tag + ".out");
    auto child = ChildProcess::Spawn(o);
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    if (!child.ok()) return 0;
    serves_.push_back(std::move(child).value());
    ChildProcess& c = serves_.back();
    uint16_t port = 0;
    WaitFor([&] {
      if (c.Poll()) return true;
      auto text = ReadFile(ready);
      if (!text.ok()) return false;
      json j = json::parse(*text, nullptr, false);
      if (j.is_object()) port = j.value("port", 0);
      ready_json_ = j;
      return port != 0;
    }, std::chrono::seconds(60));
    EXPECT_NE(port, 0) << ReadText(tmp_.File(tag + ".out"));
    return port;
  }
  ChildProcess& last_serve() { return serves_.back(); }
  const json& ready_json() const { return ready_json_; }
  std::string ServeLog(const std::string& tag) { return ReadText(tmp_.File(tag + ".out")); }

 private:
  TempDir tmp_;
  std::string data_ = tmp_.path() + "/data";
  zmq::context_t ctx_{1};
  std::optional<ChildProcess> storage_;
  std::vector<ChildProcess> serves_;
  std::string api_, feed_;
  std::optional<RegistryClient> client_;
  json ready_json_;
};

// The first n test images, raw pixels [n, 1, 28, 28] float.
inline torch::Tensor RawTestImages(int64_t n) {
  auto img = data::ReadIdx(TestImagesPath());
  EXPECT_TRUE(img.ok()) << img.status().ToString();
  if (!img.ok()) return {};
  return torch::from_blob(img->data.data(), {img->dims[0], 1, img->dims[1], img->dims[2]}, torch::kUInt8)
      .slice(0, 0, n)
      .to(torch::kFloat32);
}

// An infer body for rows of raw pixels [k, 1, 28, 28].
inline std::string InferBody(const torch::Tensor& rows, const std::string& id = "") {
  torch::Tensor c = rows.contiguous();
  std::vector<float> data(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  json body = {{"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {c.size(0), 1, 28, 28}}, {"data", data}}}}};
  if (!id.empty()) body["id"] = id;
  return body.dump();
}

inline Reply Post(uint16_t port, const std::string& target, const std::string& body) {
  return Fetch(port, "POST", target, {{"Content-Type", "application/json"}}, body);
}

}  // namespace gantry::serving::testing
