// TorchServable: one registry version, built through gantry::model and
// served by the batcher (the Servable of model_slot.h).
//
// Preprocessing is the training run's: a version whose manifest has
// `normalize` (IDX images) takes raw pixels 0..255 and computes
// (x / 255 - mean) / std in FP32, bit-identical to the LibTorch ops of
// data/idx_reader.cc (NormalizePixels); other models (CSV features) take their
// features as they are. Rows arrive flat (product of input_shape floats) and
// are viewed as [B, *input_shape].
//
// int8 (int8_linear.h): a version whose meta says quantization
// "dynamic_int8", or any mlp when the deployment asks for int8, runs its
// Linear layers through LibTorch's dynamic quantized ops.
//
// Thread safety: Forward is const and thread-safe (a mutex serialises the
// fp32 Model, which is one-thread-at-a-time; the int8 path is reentrant).
#pragma once

#include <torch/types.h>

#include <memory>
#include <mutex>
#include <string>

#include "model/model.h"
#include "serving/int8_linear.h"
#include "serving/model_slot.h"
#include "serving/registry_client.h"
#include "serving/tensor.h"

namespace gantry::serving {

// (x / 255 - mean) / std over FP32 `raw`, element by element in one pass:
// the same IEEE float operations, in the same order, as LibTorch's
// x.div(255.0).sub_(mean).div_(std) (its sub is an exact fused multiply-add
// by -1), so the result is bit-identical (a test compares every pixel value)
// at a third of the cost for one row (three TensorIterator passes → one).
torch::Tensor NormalizePixels(const torch::Tensor& raw, double mean, double std);

class TorchServable final : public Servable {
 public:
  // Builds the network (CPU, eval mode) and runs one warm-up batch.
  static Result<std::shared_ptr<const TorchServable>> Create(const LoadedVersion& v, bool int8);

  const std::string& version() const override { return version_; }
  Result<std::vector<float>> Forward(const BatchInput& input) const override;
  // Raw inputs [B, ...] (pixels for image models) → logits [B, classes].
  Result<torch::Tensor> Logits(const torch::Tensor& raw) const;

  const model::ModelManifest& manifest() const { return manifest_; }
  bool int8() const { return int8_ != nullptr; }
  // Elements per input row.
  size_t row_size() const { return row_size_; }
  // The KServe v2 metadata of this model under `name`.
  ModelMetadata Metadata(const std::string& name) const;

 private:
  TorchServable() = default;
  torch::Tensor Preprocess(const torch::Tensor& raw) const;

  std::string version_;
  model::ModelManifest manifest_;
  size_t row_size_ = 0;
  mutable std::mutex mu_;                // serialises fp32_->Forward
  std::unique_ptr<model::Model> fp32_;   // GUARDED_BY(mu_); null when int8
  std::unique_ptr<Int8Mlp> int8_;
};

}  // namespace gantry::serving
