#include "worker/gradient_averager.h"

#include <torch/torch.h>

namespace gantry::worker {

GradientAverager::GradientAverager(Communicator& comm, std::vector<torch::Tensor> params)
    : comm_(comm), params_(std::move(params)) {
  for (const auto& p : params_) numel_ += p.numel();
}

Status GradientAverager::Average() {
  try {
    torch::NoGradGuard no_grad;
    if (!flat_.defined()) {
      auto opts = params_.empty() ? torch::TensorOptions(torch::kFloat32) : params_[0].options();
      flat_ = torch::empty({numel_}, opts.requires_grad(false));
    }
    int64_t offset = 0;
    for (auto& p : params_) {
      auto slot = flat_.narrow(0, offset, p.numel());
      if (p.grad().defined()) {
        slot.copy_(p.grad().reshape({-1}));
      } else {
        slot.zero_();
      }
      offset += p.numel();
    }
    GANTRY_RETURN_IF_ERROR(comm_.AllreduceSum(flat_).WithContext("averaging gradients"));
    if (comm_.size() > 1) flat_.div_(static_cast<double>(comm_.size()));
    offset = 0;
    for (auto& p : params_) {
      auto slot = flat_.narrow(0, offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(slot);
      } else {
        p.mutable_grad() = slot.clone();
      }
      offset += p.numel();
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("averaging gradients: ") + e.what());
  }
  return Status::Ok();
}

Status BroadcastParameters(Communicator& comm, torch::nn::Module& module) {
  try {
    torch::NoGradGuard no_grad;
    auto tensors = module.parameters();
    for (auto& b : module.buffers()) tensors.push_back(b);
    for (auto& t : tensors) {
      // Parameters are contiguous leaves; broadcast into them directly.
      torch::Tensor data = t.is_contiguous() ? t : t.contiguous();
      GANTRY_RETURN_IF_ERROR(comm.Broadcast(data, 0).WithContext("broadcasting parameters"));
      if (!data.is_same(t)) t.copy_(data);
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("broadcasting parameters: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace gantry::worker
