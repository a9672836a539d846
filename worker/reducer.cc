#include "worker/reducer.h"

#include <torch/torch.h>

#include <chrono>

namespace gantry::worker {

Reducer::Reducer(Communicator& comm, std::vector<torch::Tensor> params, Options options)
    : comm_(comm), params_(std::move(params)), options_(options) {}

Result<std::unique_ptr<Reducer>> Reducer::Create(Communicator& comm, std::vector<torch::Tensor> params,
                                                 Options options) {
  if (options.bucket_bytes <= 0) {
    return Status::InvalidArgument("reducer: bucket size must be > 0 bytes (got " +
                                   std::to_string(options.bucket_bytes) + ")");
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].requires_grad()) {
      return Status::InvalidArgument("reducer: parameter " + std::to_string(i) + " does not require grad");
    }
  }
  std::unique_ptr<Reducer> r(new Reducer(comm, std::move(params), options));
  try {
    r->BuildBuckets();
    for (size_t i = 0; i < r->params_.size(); ++i) {
      Reducer* self = r.get();
      r->hooks_.push_back(
          r->params_[i].register_hook([self, i](const torch::Tensor& grad) { self->OnGradient(i, grad); }));
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("reducer: ") + e.what());
  }
  return r;
}

Reducer::~Reducer() {
  for (size_t i = 0; i < hooks_.size(); ++i) params_[i].remove_hook(hooks_[i]);
  // A step abandoned mid-way may still have buckets in flight; their buffers
  // must outlive the collectives.
  for (auto& b : buckets_) {
    if (b.work) (void)b.work->Wait();
  }
}

void Reducer::BuildBuckets() {
  slots_.resize(params_.size());
  Bucket current;
  int64_t bytes = 0;
  auto close = [&] {
    if (current.params.empty()) return;
    int64_t n = 0;
    for (size_t i : current.params) n += params_[i].numel();
    current.flat = torch::zeros({n}, params_[current.params[0]].options().requires_grad(false));
    buckets_.push_back(std::move(current));
    current = Bucket{};
    bytes = 0;
  };
  for (size_t k = params_.size(); k-- > 0;) {
    const torch::Tensor& p = params_[k];
    const int64_t pbytes = p.numel() * static_cast<int64_t>(p.element_size());
    // One flat buffer holds one dtype on one device.
    if (!current.params.empty()) {
      const torch::Tensor& first = params_[current.params[0]];
      if (first.scalar_type() != p.scalar_type() || first.device() != p.device() ||
          bytes + pbytes > options_.bucket_bytes) {
        close();
      }
    }
    slots_[k] = Slot{buckets_.size(), bytes / static_cast<int64_t>(p.element_size()), false};
    current.params.push_back(k);
    bytes += pbytes;
    numel_ += p.numel();
  }
  close();
}

void Reducer::Prepare() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& b : buckets_) {
    b.pending = b.params.size();
    b.started = false;
    b.work.reset();
  }
  for (auto& s : slots_) s.seen = false;
  next_to_start_ = 0;
  error_ = Status::Ok();
  armed_ = true;
  stats_ = StepStats{};
}

void Reducer::OnGradient(size_t index, const torch::Tensor& grad) {
  std::lock_guard<std::mutex> l(mu_);
  if (!armed_) return;  // a backward outside Prepare()/Finalize(): not ours
  Slot& s = slots_[index];
  Bucket& b = buckets_[s.bucket];
  if (s.seen || b.started) {
    if (error_.ok()) {
      error_ = Status::FailedPrecondition("reducer: parameter " + std::to_string(index) +
                                          " got two gradients in one step (backward ran twice?)");
    }
    return;
  }
  try {
    torch::NoGradGuard no_grad;
    b.flat.narrow(0, s.offset, params_[index].numel()).copy_(grad.reshape({-1}));
  } catch (const std::exception& e) {
    if (error_.ok()) error_ = Status::Internal(std::string("reducer: copying a gradient: ") + e.what());
    return;
  }
  s.seen = true;
  if (--b.pending == 0 && options_.overlap) StartReady();
}

void Reducer::StartReady() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].pending == 0) {
    Bucket& b = buckets_[next_to_start_++];
    b.started = true;
    b.work = comm_.AllreduceSumAsync(b.flat);
    if (armed_) ++stats_.buckets_started_early;
  }
}

Status Reducer::Finalize() {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> l(mu_);
  armed_ = false;
  // Parameters without a gradient this step contribute zeros.
  for (size_t i = 0; i < params_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.seen) continue;
    Bucket& b = buckets_[s.bucket];
    b.flat.narrow(0, s.offset, params_[i].numel()).zero_();
    --b.pending;
  }
  // Wait for the buckets started during backward, then reduce the rest
  // synchronously in index order: with nothing in flight the communicator
  // can run them on this thread, without a hand-off to its own.
  Status st = error_;
  for (auto& b : buckets_) {
    if (!b.started) continue;
    Status w = b.work ? b.work->Wait() : Status::Internal("reducer: a started bucket has no work");
    b.work.reset();
    if (st.ok() && !w.ok()) st = w.WithContext("averaging gradients");
  }
  for (; next_to_start_ < buckets_.size(); ++next_to_start_) {
    Bucket& b = buckets_[next_to_start_];
    if (b.pending != 0 && st.ok()) st = Status::Internal("reducer: a bucket still waits for gradients");
    b.started = true;
    // Every rank must issue the same collectives even after a local error.
    Status w = comm_.AllreduceSum(b.flat);
    if (st.ok() && !w.ok()) st = w.WithContext("averaging gradients");
  }
  stats_.wait_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!st.ok()) return st;
  try {
    torch::NoGradGuard no_grad;
    for (auto& b : buckets_) {
      if (comm_.size() > 1) b.flat.div_(static_cast<double>(comm_.size()));
      for (size_t i : b.params) {
        torch::Tensor& p = params_[i];
        auto view = b.flat.narrow(0, slots_[i].offset, p.numel()).view(p.sizes());
        if (p.grad().defined()) {
          p.mutable_grad().copy_(view);
        } else {
          p.mutable_grad() = view.clone();
        }
      }
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("averaging gradients: ") + e.what());
  }
  return Status::Ok();
}

Status BroadcastTensors(Communicator& comm, const std::vector<torch::Tensor>& tensors) {
  try {
    torch::NoGradGuard no_grad;
    for (const auto& t : tensors) {
      // Parameters are contiguous leaves; broadcast into them directly.
      torch::Tensor data = t.is_contiguous() ? t : t.contiguous();
      GANTRY_RETURN_IF_ERROR(comm.Broadcast(data, 0).WithContext("broadcasting parameters"));
      if (!data.is_same(t)) const_cast<torch::Tensor&>(t).copy_(data);
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("broadcasting parameters: ") + e.what());
  }
  return Status::Ok();
}

Status BroadcastParameters(Communicator& comm, torch::nn::Module& module) {
  auto tensors = module.parameters();
  for (auto& b : module.buffers()) tensors.push_back(b);
  return BroadcastTensors(comm, tensors);
}

}  // namespace gantry::worker
