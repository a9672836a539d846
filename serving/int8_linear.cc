#include "serving/int8_linear.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <map>

namespace gantry::serving {
namespace {

using PackedPtr = c10::intrusive_ptr<LinearPackedParamsBase>;

// "3.weight" → 3; -1 when the name is not "<int>.weight".
int64_t LayerIndex(const std::string& name) {
  const auto dot = name.find('.');
  if (dot == std::string::npos || dot == 0 || name.substr(dot) != ".weight") return -1;
  for (size_t i = 0; i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
  }
  return std::strtoll(name.c_str(), nullptr, 10);
}

// The 2-D weights of an mlp's Linear layers, by layer index.
std::map<int64_t, std::string> LinearWeights(const model::TensorMap& weights) {
  std::map<int64_t, std::string> out;
  for (const auto& [name, t] : weights) {
    const int64_t i = LayerIndex(name);
    if (i >= 0 && t.dim() == 2) out[i] = name;
  }
  return out;
}

torch::Tensor QuantizeWeight(const torch::Tensor& w) {
  const double max_abs = w.abs().max().item<double>();
  const double scale = max_abs > 0 ? max_abs / 127.0 : 1.0;
  return at::quantize_per_tensor(w.to(torch::kFloat).contiguous(), scale, 0, at::kQInt8);
}

}  // namespace

Result<std::string> SelectQuantizedEngine() {
  const auto& engines = at::globalContext().supportedQEngines();
  for (at::QEngine want : {at::QEngine::FBGEMM, at::QEngine::QNNPACK}) {
    if (std::find(engines.begin(), engines.end(), want) != engines.end()) {
      at::globalContext().setQEngine(want);
      return std::string(want == at::QEngine::FBGEMM ? "fbgemm" : "qnnpack");
    }
  }
  return Status::Unavailable("int8: this LibTorch has no quantized engine (neither fbgemm nor qnnpack)");
}

Result<model::TensorMap> QuantizeDequantizeLinear(const model::TensorMap& weights, const std::string& source) {
  model::TensorMap out = weights;
  const auto layers = LinearWeights(weights);
  if (layers.empty()) return Status::InvalidArgument("int8: " + source + " has no Linear layer weights");
  try {
    for (const auto& [i, name] : layers) out[name] = QuantizeWeight(weights.at(name)).dequantize();
  } catch (const std::exception& e) {
    return Status::Internal("int8: quantising " + source + ": " + e.what());
  }
  return out;
}

struct Int8Mlp::Impl {
  std::vector<PackedPtr> layers;
  bool reduce_range = false;
};

Int8Mlp::Int8Mlp(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Int8Mlp::~Int8Mlp() = default;
size_t Int8Mlp::layers() const { return impl_->layers.size(); }

Result<std::unique_ptr<Int8Mlp>> Int8Mlp::Create(const model::TensorMap& weights, const std::string& source) {
  const auto layers = LinearWeights(weights);
  if (layers.empty()) return Status::InvalidArgument("int8: " + source + " has no Linear layer weights");
  auto impl = std::make_unique<Impl>();
  // fbgemm's dynamic path quantises activations to 7 bits (reduce_range), as
  // Python's quantize_dynamic does on x86, to avoid overflow in its kernels.
  impl->reduce_range = at::globalContext().qEngine() == at::QEngine::FBGEMM;
  try {
    auto prepack = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("quantized::linear_prepack", "")
                       .typed<PackedPtr(at::Tensor, c10::optional<at::Tensor>)>();
    for (const auto& [i, name] : layers) {
      c10::optional<at::Tensor> bias;
      auto b = weights.find(std::to_string(i) + ".bias");
      if (b != weights.end()) bias = b->second.to(torch::kFloat).contiguous();
      impl->layers.push_back(prepack.call(QuantizeWeight(weights.at(name)), bias));
    }
  } catch (const std::exception& e) {
    return Status::Unavailable("int8: packing " + source + " with quantized::linear_prepack: " + e.what());
  }
  return std::unique_ptr<Int8Mlp>(new Int8Mlp(std::move(impl)));
}

torch::Tensor Int8Mlp::Forward(const torch::Tensor& x) const {
  torch::Tensor h = x.reshape({x.size(0), -1}).contiguous();
  for (size_t i = 0; i < impl_->layers.size(); ++i) {
    const bool last = i + 1 == impl_->layers.size();
    h = last ? impl_->layers[i]->apply_dynamic(h, impl_->reduce_range)
             : impl_->layers[i]->apply_dynamic_relu(h, impl_->reduce_range);
  }
  return h;
}

}  // namespace gantry::serving
