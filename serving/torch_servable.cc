#include "serving/torch_servable.h"

#include <torch/torch.h>

#include <cstring>

#include "model/checkpoint_model.h"

namespace gantry::serving {

Result<std::shared_ptr<const TorchServable>> TorchServable::Create(const LoadedVersion& v, bool int8) {
  std::shared_ptr<TorchServable> s(new TorchServable());
  s->version_ = std::to_string(v.version);
  s->manifest_ = v.manifest;
  int64_t n = 1;
  for (int64_t d : v.manifest.input_shape) n *= d;
  if (v.manifest.input_shape.empty() || n <= 0) {
    return Status::InvalidArgument("checkpoint " + v.Source() + ": its meta lacks input_shape");
  }
  s->row_size_ = static_cast<size_t>(n);
  const bool quantized = int8 || v.quantization == kQuantizationDynamicInt8;
  if (quantized) {
    if (v.manifest.builtin != "mlp") {
      return Status::InvalidArgument("int8: " + v.Source() + " is a '" + v.manifest.builtin +
                                     "' model; only the builtin mlp is quantised (serve it without --int8)");
    }
    GANTRY_ASSIGN_OR_RETURN(s->int8_, Int8Mlp::Create(v.tensors, v.Source()));
  } else {
    GANTRY_ASSIGN_OR_RETURN(s->fp32_, model::ModelFromCheckpoint(v.manifest, v.tensors, v.Source()));
  }
  // Warm-up: the first forward allocates and picks kernels; do it before the
  // version takes traffic.
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), v.manifest.input_shape.begin(), v.manifest.input_shape.end());
  auto warm = s->Logits(torch::zeros(shape));
  if (!warm.ok()) return warm.status().WithContext("warm-up of " + v.Source());
  if (warm->dim() != 2 || warm->size(1) != v.manifest.num_classes) {
    return Status::InvalidArgument("checkpoint " + v.Source() + ": the model gives logits of shape " +
                                   c10::str(warm->sizes()) + ", expected [1, " +
                                   std::to_string(v.manifest.num_classes) + "]");
  }
  return std::shared_ptr<const TorchServable>(std::move(s));
}

torch::Tensor NormalizePixels(const torch::Tensor& raw, double mean, double std) {
  const torch::Tensor x = raw.to(torch::kFloat32).contiguous();
  torch::Tensor out = torch::empty(x.sizes(), torch::kFloat32);
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const float m = static_cast<float>(mean);
  const float s = static_cast<float>(std);
  for (int64_t i = 0, n = x.numel(); i < n; ++i) o[i] = (in[i] / 255.0f - m) / s;
  return out;
}

torch::Tensor TorchServable::Preprocess(const torch::Tensor& raw) const {
  if (!manifest_.normalize) return raw;
  // Bit-identical to data/idx_reader.cc's ops, so the model sees the inputs
  // it was trained and tested on.
  return NormalizePixels(raw, manifest_.normalize->mean, manifest_.normalize->std);
}

Result<torch::Tensor> TorchServable::Logits(const torch::Tensor& raw) const {
  try {
    torch::InferenceMode guard;
    torch::Tensor x = Preprocess(raw.to(torch::kFloat32));
    if (int8_) return int8_->Forward(x);
    std::lock_guard<std::mutex> l(mu_);
    return fp32_->Forward(x);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("forward of version ") + version_ + ": " + e.what());
  }
}

Result<std::vector<float>> TorchServable::Forward(const BatchInput& input) const {
  if (input.row_size != row_size_) {
    return Status::InvalidArgument("rows of " + std::to_string(input.row_size) + " values, the model takes " +
                                   std::to_string(row_size_));
  }
  std::vector<int64_t> shape = {static_cast<int64_t>(input.rows)};
  shape.insert(shape.end(), manifest_.input_shape.begin(), manifest_.input_shape.end());
  // from_blob does not copy; the batch data outlives this call.
  torch::Tensor x = torch::from_blob(const_cast<float*>(input.data.data()), shape, torch::kFloat32);
  GANTRY_ASSIGN_OR_RETURN(torch::Tensor logits, Logits(x));
  torch::Tensor c = logits.to(torch::kFloat32).contiguous();
  std::vector<float> out(static_cast<size_t>(c.numel()));
  if (!out.empty()) std::memcpy(out.data(), c.data_ptr<float>(), out.size() * sizeof(float));
  return out;
}

ModelMetadata TorchServable::Metadata(const std::string& name) const {
  ModelMetadata m;
  m.name = name;
  m.versions = {version_};
  m.platform = int8_ ? "gantry_builtin_int8" : (manifest_.builtin == "torchscript" ? "pytorch_torchscript" : "gantry_builtin");
  std::vector<int64_t> full = {-1};
  full.insert(full.end(), manifest_.input_shape.begin(), manifest_.input_shape.end());
  TensorSpec in{"input", DataType::kFp32, {full}};
  if (manifest_.input_shape.size() > 1) in.shapes.push_back({-1, static_cast<int64_t>(row_size_)});
  m.inputs = {in};
  m.outputs = {TensorSpec{"logits", DataType::kFp32, {{-1, manifest_.num_classes}}}};
  return m;
}

}  // namespace gantry::serving
