// gantry-optimize: makes an optimised registry version of a model
// (`gantry ckpt optimize MODEL@REF --int8` runs it; docs/serving.md).
//
//   gantry-optimize --storage tcp://HOST:PORT MODEL@REF --int8
//                   [--test-images F --test-labels F] [--json]
//
// int8: the Linear layers' weights are quantised (per-tensor symmetric
// qint8, int8_linear.h) and stored dequantised as a new version with
// lineage parent MODEL@vN, meta.quantization "dynamic_int8" and the tag
// "int8". Both the parent (fp32) and the int8 model are run on the test set
// (IDX, raw pixels preprocessed as training did); the new version's metrics
// hold test_accuracy (int8), parent_test_accuracy (fp32) and
// accuracy_delta. Prints the result (one JSON line with --json).
// Exit codes: 0 done, 1 failed, 2 bad flags.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <torch/torch.h>
#include <zmq.hpp>

#include "common/curve.h"
#include "common/log.h"
#include "data/idx_reader.h"
#include "serving/int8_linear.h"
#include "serving/registry_client.h"
#include "serving/torch_servable.h"

namespace {

using namespace gantry;
using namespace gantry::serving;

constexpr const char* kDefaultTestImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
constexpr const char* kDefaultTestLabels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";

int Fail(const Status& s) {
  std::fprintf(stderr, "gantry-optimize: %s\n", s.ToString().c_str());
  return 1;
}

Result<double> Accuracy(const TorchServable& m, const torch::Tensor& images, const torch::Tensor& labels) {
  int64_t correct = 0;
  const int64_t n = images.size(0);
  for (int64_t i = 0; i < n; i += 256) {
    const int64_t end = std::min(n, i + 256);
    GANTRY_ASSIGN_OR_RETURN(torch::Tensor logits, m.Logits(images.slice(0, i, end)));
    correct += logits.argmax(1).eq(labels.slice(0, i, end)).sum().item<int64_t>();
  }
  return n > 0 ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gantry-optimize: make an optimised version of a registry model"};
  std::string storage, target, images = kDefaultTestImages, labels = kDefaultTestLabels;
  bool int8 = false, as_json = false;
  app.add_option("--storage", storage, "storage service endpoint")->required();
  app.add_option("version", target, "MODEL@REF")->required();
  app.add_flag("--int8", int8, "dynamic int8 quantisation of the Linear layers")->required();
  app.add_option("--test-images", images, "IDX test images (accuracy of both versions)");
  app.add_option("--test-labels", labels, "IDX test labels");
  app.add_flag("--json", as_json, "one JSON line");
  std::string keys;
  app.add_option("--keys", keys, "CURVE keys directory (server.pub, client.key; default: $GANTRY_KEYS)");
  CLI11_PARSE(app, argc, argv);
  InitLogging("gantry-optimize", "", "warn");
  if (auto s = SetUpClientCurve(keys); !s.ok()) return Fail(s);

  const auto at = target.find('@');
  const std::string model = target.substr(0, at);
  const std::string ref = at == std::string::npos ? "latest" : target.substr(at + 1);
  auto engine = SelectQuantizedEngine();
  if (!engine.ok()) return Fail(engine.status());

  zmq::context_t ctx(1);
  RegistryClient client(ctx, storage);
  auto parent = client.Load(model, ref);
  if (!parent.ok()) return Fail(parent.status());
  if (!parent->quantization.empty()) {
    return Fail(Status::InvalidArgument(parent->Source() + " is already quantised (" + parent->quantization + ")"));
  }
  if (parent->manifest.builtin != "mlp") {
    return Fail(Status::InvalidArgument("int8: " + parent->Source() + " is a '" + parent->manifest.builtin +
                                        "' model; only the builtin mlp's Linear layers are quantised"));
  }
  auto q = QuantizeDequantizeLinear(parent->tensors, parent->Source());
  if (!q.ok()) return Fail(q.status());
  LoadedVersion qv = *parent;
  qv.tensors = *q;
  qv.quantization = kQuantizationDynamicInt8;

  auto fp32 = TorchServable::Create(*parent, false);
  if (!fp32.ok()) return Fail(fp32.status());
  auto i8 = TorchServable::Create(qv, true);
  if (!i8.ok()) return Fail(i8.status());

  DerivedVersion d;
  d.model = model;
  d.parent_model = model;
  d.parent_version = parent->version;
  d.meta = parent->meta;
  d.meta["quantization"] = kQuantizationDynamicInt8;
  d.meta["quantized_engine"] = *engine;
  d.meta["quantized_from"] = parent->version;
  d.tensors = *q;
  std::optional<double> acc32, acc8;
  if (std::filesystem::exists(images) && std::filesystem::exists(labels)) {
    auto img = data::ReadIdx(images);
    if (!img.ok()) return Fail(img.status());
    auto lab = data::ReadIdx(labels);
    if (!lab.ok()) return Fail(lab.status());
    std::vector<int64_t> shape = img->dims;
    if (shape.size() == 3) shape.insert(shape.begin() + 1, 1);  // [N, 1, rows, cols]
    torch::Tensor x = torch::from_blob(img->data.data(), shape, torch::kUInt8).to(torch::kFloat32);
    torch::Tensor y = torch::from_blob(lab->data.data(), {static_cast<int64_t>(lab->data.size())}, torch::kUInt8)
                          .to(torch::kLong);
    auto a = Accuracy(**fp32, x, y);
    if (!a.ok()) return Fail(a.status());
    auto b = Accuracy(**i8, x, y);
    if (!b.ok()) return Fail(b.status());
    acc32 = *a;
    acc8 = *b;
    d.metrics["test_accuracy"] = *acc8;
    d.metrics["parent_test_accuracy"] = *acc32;
    d.metrics["accuracy_delta"] = *acc8 - *acc32;
    d.meta["test_set"] = images;
  } else {
    std::fprintf(stderr, "gantry-optimize: no test set at %s; accuracy not recorded\n", images.c_str());
  }
  auto version = client.Save(d);
  if (!version.ok()) return Fail(version.status());
  if (auto s = client.Tag(model, *version, "int8"); !s.ok()) return Fail(s);

  json out = {{"model", model}, {"version", *version}, {"parent_version", parent->version}, {"engine", *engine},
              {"tag", "int8"}};
  if (acc8) {
    out["test_accuracy"] = *acc8;
    out["parent_test_accuracy"] = *acc32;
  }
  if (as_json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("%s@v%lld: int8 (%s) of v%lld", model.c_str(), static_cast<long long>(*version), engine->c_str(),
                static_cast<long long>(parent->version));
    if (acc8) std::printf(", test accuracy %.4f (fp32 %.4f)", *acc8, *acc32);
    std::printf("\n");
  }
  return 0;
}
