#include "model/models.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

namespace gantry::model {
namespace {

// Width of the CNN's fully connected layer when model.hidden is empty.
constexpr int64_t kCnnDefaultHidden = 128;

torch::nn::Sequential Mlp(const std::vector<int64_t>& hidden, int64_t inputs, int64_t classes) {
  torch::nn::Sequential net;
  net->push_back(torch::nn::Flatten());
  int64_t width = inputs;
  for (int64_t h : hidden) {
    net->push_back(torch::nn::Linear(width, h));
    net->push_back(torch::nn::ReLU());
    width = h;
  }
  net->push_back(torch::nn::Linear(width, classes));
  return net;
}

torch::nn::Sequential Cnn(const std::vector<int64_t>& hidden, int64_t channels, int64_t rows, int64_t cols,
                          int64_t classes) {
  using torch::nn::Conv2dOptions;
  using torch::nn::MaxPool2dOptions;
  torch::nn::Sequential net(
      torch::nn::Conv2d(Conv2dOptions(channels, 16, 3).padding(1)), torch::nn::ReLU(),
      torch::nn::MaxPool2d(MaxPool2dOptions(2)),
      torch::nn::Conv2d(Conv2dOptions(16, 32, 3).padding(1)), torch::nn::ReLU(),
      torch::nn::MaxPool2d(MaxPool2dOptions(2)), torch::nn::Flatten());
  int64_t fc = hidden.empty() ? kCnnDefaultHidden : hidden.front();
  // Padding keeps the size through each conv; each pool halves it (floor).
  net->push_back(torch::nn::Linear(32 * (rows / 4) * (cols / 4), fc));
  net->push_back(torch::nn::ReLU());
  net->push_back(torch::nn::Linear(fc, classes));
  return net;
}

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Result<torch::nn::Sequential> BuildSequential(const ModelSpec& spec, const std::vector<int64_t>& sample_shape,
                                              int64_t num_classes) {
  if (!spec.torchscript.empty()) {
    return Status::InvalidArgument("model.torchscript is not a builtin model (use CreateModel in model.h)");
  }
  int64_t inputs = sample_shape.empty() ? 0 : 1;
  for (int64_t d : sample_shape) inputs *= d > 0 ? d : 0;
  if (inputs <= 0) return Status::InvalidArgument("model: bad input sample shape " + ShapeString(sample_shape));
  if (num_classes < 1) {
    return Status::InvalidArgument("model: the data must have at least one class (got " +
                                   std::to_string(num_classes) + ")");
  }
  try {
    if (spec.builtin == "mlp") return Mlp(spec.hidden, inputs, num_classes);
    if (spec.builtin == "cnn") {
      if (sample_shape.size() != 3) {
        return Status::InvalidArgument("job spec: model.builtin cnn needs image samples [channels, rows, cols] "
                                       "but the data gives " + ShapeString(sample_shape) +
                                       "; use mlp, or a TorchScript model that declares input_shape");
      }
      const int64_t rows = sample_shape[1], cols = sample_shape[2];
      if (rows < 4 || cols < 4) {
        return Status::InvalidArgument("job spec: model.builtin cnn needs images of at least 4x4 (got " +
                                       std::to_string(rows) + "x" + std::to_string(cols) + ")");
      }
      return Cnn(spec.hidden, sample_shape[0], rows, cols, num_classes);
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("building model: ") + e.what());
  }
  return Status::InvalidArgument("job spec: model.builtin must be one of mlp, cnn (got '" +
                                 spec.builtin + "')");
}

}  // namespace gantry::model
