#include "model/model.h"

#include <torch/torch.h>

#include <map>

#include "model/models.h"
#include "model/script_model.h"

namespace gantry::model {
namespace {

// A builtin torch::nn::Sequential. nn::Module's named_modules() is pre-order
// with the root first under "", as PyTorch's is, so walking it gives the
// state_dict() names and order.
class SequentialModel final : public Model {
 public:
  SequentialModel(torch::nn::Sequential net, std::string description, std::vector<int64_t> input_shape)
      : net_(std::move(net)), description_(std::move(description)), input_shape_(std::move(input_shape)) {}

  std::string Describe() const override { return description_; }

  Result<torch::Tensor> Forward(const torch::Tensor& batch) override {
    try {
      return net_->forward(batch);
    } catch (const c10::Error& e) {
      return Status::InvalidArgument("model " + description_ + ": forward failed: " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      return Status::Internal("model " + description_ + ": forward failed: " + e.what());
    }
  }

  NamedTensors NamedParameters() const override { return Walk(true, false); }
  NamedTensors NamedBuffers() const override { return Walk(false, true); }
  NamedTensors StateDict() const override { return Walk(true, true); }
  void SetTraining(bool on) override { net_->train(on); }
  bool training() const override { return net_->is_training(); }
  std::optional<std::vector<int64_t>> InputShape() const override { return input_shape_; }

  Status To(const torch::Device& device) override {
    try {
      net_->to(device);
    } catch (const std::exception& e) {
      return Status::InvalidArgument("model " + description_ + ": cannot move to " + device.str() + ": " + e.what());
    }
    return Status::Ok();
  }

 private:
  NamedTensors Walk(bool params, bool buffers) const {
    NamedTensors out;
    for (const auto& item : net_->named_modules()) {
      const std::string prefix = item.key().empty() ? "" : item.key() + ".";
      if (params) {
        for (const auto& p : item.value()->named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.key(), p.value());
      }
      if (buffers) {
        for (const auto& b : item.value()->named_buffers(/*recurse=*/false)) out.emplace_back(prefix + b.key(), b.value());
      }
    }
    return out;
  }

  torch::nn::Sequential net_;
  std::string description_;
  std::vector<int64_t> input_shape_;
};

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

std::unique_ptr<Model> WrapSequential(torch::nn::Sequential net, std::string description,
                                      std::vector<int64_t> input_shape) {
  return std::make_unique<SequentialModel>(std::move(net), std::move(description), std::move(input_shape));
}

std::vector<torch::Tensor> Model::Parameters() const {
  std::vector<torch::Tensor> out;
  for (auto& [name, t] : NamedParameters()) out.push_back(t);
  return out;
}

Status Model::LoadStateDict(const NamedTensors& state) {
  std::map<std::string, torch::Tensor> given(state.begin(), state.end());
  std::string missing, mismatched;
  NamedTensors own = StateDict();
  for (const auto& [name, dst] : own) {
    auto it = given.find(name);
    if (it == given.end()) {
      missing += (missing.empty() ? "" : ", ") + name;
    } else if (!it->second.sizes().equals(dst.sizes())) {
      mismatched += (mismatched.empty() ? "" : ", ") + name + " " + ShapeString(it->second.sizes().vec()) +
                    " vs " + ShapeString(dst.sizes().vec());
    }
  }
  std::string unexpected;
  for (const auto& [name, t] : state) {
    bool known = false;
    for (const auto& o : own) known = known || o.first == name;
    if (!known) unexpected += (unexpected.empty() ? "" : ", ") + name;
  }
  if (!missing.empty() || !mismatched.empty() || !unexpected.empty()) {
    std::string why;
    if (!missing.empty()) why += " missing: " + missing + ";";
    if (!unexpected.empty()) why += " unexpected: " + unexpected + ";";
    if (!mismatched.empty()) why += " shape differs (given vs model): " + mismatched + ";";
    return Status::InvalidArgument("model " + Describe() + ": the state does not fit (" + why.substr(1) +
                                   " was it saved from another model or data shape?)");
  }
  try {
    torch::NoGradGuard no_grad;
    for (auto& [name, dst] : own) dst.copy_(given.at(name));
  } catch (const std::exception& e) {
    return Status::InvalidArgument("model " + Describe() + ": loading state: " + e.what());
  }
  return Status::Ok();
}

Status Model::Check(const std::vector<int64_t>& sample_shape, int64_t num_classes) {
  std::vector<int64_t> shape = {2};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  const bool was_training = training();
  Result<torch::Tensor> out = Status::Internal("not run");
  try {
    torch::NoGradGuard no_grad;
    auto params = Parameters();
    auto options = torch::TensorOptions().dtype(torch::kFloat32);
    if (!params.empty()) options = options.device(params.front().device());
    SetTraining(false);
    out = Forward(torch::zeros(shape, options));
  } catch (const std::exception& e) {
    out = Status::Internal(e.what());
  }
  SetTraining(was_training);
  if (!out.ok()) {
    return out.status().WithContext("model " + Describe() + ": forward on a batch of shape " + ShapeString(shape) +
                                    " failed (does the model expect samples of shape " +
                                    ShapeString(sample_shape) + "?)");
  }
  const torch::Tensor& logits = *out;
  if (logits.dim() != 2 || logits.size(0) != 2 || logits.size(1) != num_classes ||
      !logits.is_floating_point()) {
    return Status::InvalidArgument("model " + Describe() + ": forward on a batch of shape " + ShapeString(shape) +
                                   " returned " + ShapeString(logits.sizes().vec()) + " " +
                                   std::string(c10::toString(logits.scalar_type())) + "; expected float logits [2, " +
                                   std::to_string(num_classes) + "] for the data's " +
                                   std::to_string(num_classes) + " classes");
  }
  return Status::Ok();
}

Result<std::unique_ptr<Model>> CreateModel(const ModelSpec& spec, const std::vector<int64_t>& sample_shape,
                                           int64_t num_classes) {
  std::unique_ptr<Model> model;
  if (!spec.torchscript.empty()) {
    GANTRY_ASSIGN_OR_RETURN(model, ScriptModel::Load(spec.torchscript));
  } else {
    GANTRY_ASSIGN_OR_RETURN(torch::nn::Sequential net, BuildSequential(spec, sample_shape, num_classes));
    // The widths actually used: the cnn takes only the first (or its default).
    std::vector<int64_t> widths = spec.hidden;
    if (spec.builtin == "cnn") widths = {(*net)[net->size() - 1]->as<torch::nn::Linear>()->options.in_features()};
    std::string hidden;
    for (int64_t h : widths) hidden += (hidden.empty() ? "" : ", ") + std::to_string(h);
    model = WrapSequential(std::move(net), spec.builtin + " [" + hidden + "]", sample_shape);
  }
  const std::vector<int64_t> shape = model->InputShape().value_or(sample_shape);
  if (Numel(shape) != Numel(sample_shape)) {
    return Status::InvalidArgument("model " + model->Describe() + " expects samples of shape " + ShapeString(shape) +
                                   " (" + std::to_string(Numel(shape)) + " values) but the data's samples are " +
                                   ShapeString(sample_shape) + " (" + std::to_string(Numel(sample_shape)) +
                                   " values)");
  }
  GANTRY_RETURN_IF_ERROR(model->Check(shape, num_classes));
  return model;
}

}  // namespace gantry::model
