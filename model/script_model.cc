#include "model/script_model.h"

#include <torch/torch.h>

namespace gantry::model {
namespace {

constexpr const char* kHowTo =
    "save one from Python with torch.jit.save(torch.jit.script(model), PATH)";

// LibTorch's messages carry a C++ backtrace and often a TorchScript source
// excerpt; the first line says what went wrong.
std::string FirstLine(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

Result<std::unique_ptr<ScriptModel>> ScriptModel::Load(const std::string& path) {
  const std::string where = "model.torchscript " + path;
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    return Status::InvalidArgument(where + ": cannot load as TorchScript (" +
                                   FirstLine(e.what_without_backtrace()) + "); " + kHowTo);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(where + ": cannot load as TorchScript (" + FirstLine(e.what()) + "); " + kHowTo);
  }
  try {
    if (!module.find_method("forward")) {
      return Status::InvalidArgument(where + ": the module has no forward() method");
    }
    bool trainable = false;
    for (const auto& p : module.parameters()) trainable = trainable || p.requires_grad();
    if (!trainable) {
      return Status::InvalidArgument(where + ": the module has no parameters that require gradients, so "
                                     "there is nothing to train (was it frozen, or traced under no_grad?)");
    }
    std::optional<std::vector<int64_t>> input_shape;
    if (module.hasattr("input_shape")) {
      c10::IValue v = module.attr("input_shape");
      if (!v.isIntList()) {
        return Status::InvalidArgument(where + ": attribute input_shape must be a List[int] such as "
                                       "[1, 28, 28] (got " + v.tagKind() + ")");
      }
      input_shape = v.toIntVector();
      for (int64_t d : *input_shape) {
        if (d <= 0) return Status::InvalidArgument(where + ": input_shape has a dimension " + std::to_string(d) + " <= 0");
      }
    }
    return std::unique_ptr<ScriptModel>(new ScriptModel(std::move(module), path, std::move(input_shape)));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(where + ": inspecting the module: " + FirstLine(e.what()));
  }
}

Result<torch::Tensor> ScriptModel::Forward(const torch::Tensor& batch) {
  c10::IValue out;
  try {
    out = module_.forward({batch});
  } catch (const c10::Error& e) {
    return Status::InvalidArgument(Describe() + ": forward failed: " + FirstLine(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(Describe() + ": forward failed: " + FirstLine(e.what()));
  }
  if (!out.isTensor()) {
    return Status::InvalidArgument(Describe() + ": forward must return one Tensor of logits [B, classes] (got " +
                                   out.tagKind() + ")");
  }
  return out.toTensor();
}

Status ScriptModel::To(const torch::Device& device) {
  try {
    module_.to(device);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(Describe() + ": cannot move to " + device.str() + ": " + FirstLine(e.what()));
  }
  return Status::Ok();
}

NamedTensors ScriptModel::Walk(bool params, bool buffers) const {
  // named_modules() is pre-order with the root first under "", like
  // PyTorch's, so each module's own tensors in turn give state_dict() order.
  NamedTensors out;
  for (const auto& item : module_.named_modules()) {
    const std::string prefix = item.name.empty() ? "" : item.name + ".";
    if (params) {
      for (const auto& p : item.value.named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.name, p.value);
    }
    if (buffers) {
      for (const auto& b : item.value.named_buffers(/*recurse=*/false)) out.emplace_back(prefix + b.name, b.value);
    }
  }
  return out;
}

}  // namespace gantry::model
