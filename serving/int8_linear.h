// Dynamic int8 quantisation of Linear layers through LibTorch's quantized
// ops, as torch.ao.quantization.quantize_dynamic does it in Python:
//   - weights: per-tensor symmetric qint8 (scale = max|w| / 127, zero point
//     0) via at::quantize_per_tensor, packed once with the dispatcher op
//     quantized::linear_prepack (the engine's packed format, bias included);
//   - activations: quantised per batch at run time by the packed params'
//     apply_dynamic (quantized::linear_dynamic), output FP32.
// The engine is chosen at run time from at::globalContext().supportedQEngines()
// (fbgemm on x86 when LibTorch has it, else qnnpack); none → unavailable.
//
// Only the builtin mlp (Flatten → [Linear → ReLU]* → Linear, models.h) is
// quantised: its Linear layers are all it has. A version made by
// `gantry ckpt optimize --int8` stores the dequantised weights (q × scale,
// float32), so it loads as an ordinary fp32 model (Python included) and
// re-quantising them here gives back the same int8 values and scale.
//
// Thread safety: SelectQuantizedEngine sets a process-wide LibTorch setting;
// call it once at start-up. Int8Mlp::Forward is const and thread-safe.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/checkpoint_model.h"

namespace gantry::serving {

// Picks and sets the quantized engine; returns its name ("fbgemm").
Result<std::string> SelectQuantizedEngine();

// The Linear layers' weights quantised and dequantised (what an int8 version
// stores); other tensors unchanged.
Result<model::TensorMap> QuantizeDequantizeLinear(const model::TensorMap& weights, const std::string& source);

class Int8Mlp {
 public:
  // From an mlp's state dict ("1.weight", "1.bias", "3.weight", ...).
  static Result<std::unique_ptr<Int8Mlp>> Create(const model::TensorMap& weights, const std::string& source);
  ~Int8Mlp();
  // x: [B, ...] float (flattened here) → logits [B, classes] float.
  torch::Tensor Forward(const torch::Tensor& x) const;
  size_t layers() const;

 private:
  struct Impl;
  explicit Int8Mlp(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gantry::serving
