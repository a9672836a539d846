#include "worker/optimizer_state.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include <sstream>
#include <type_traits>

namespace gantry::worker {
namespace {

// The optimizer's state map is keyed by the parameter's TensorImpl: as a
// string in LibTorch 1.x, as the pointer itself in 2.x. Both spellings here.
template <typename Map>
typename Map::key_type StateKey(const Map&, const torch::Tensor& p) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;  // what c10::guts::to_string(TensorImpl*) writes
    os << static_cast<const void*>(p.unsafeGetTensorImpl());
    return os.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

std::string Name(const std::string& param, const char* field) {
  return std::string(kOptimizerTensorPrefix) + param + "/" + field;
}

// Live state, not a copy: the snapshot that encodes it makes the copy.
torch::Tensor Copy(const torch::Tensor& t) { return t.detach(); }

template <typename AdamState>
void SaveAdam(const AdamState& s, const std::string& param, NamedTensors& out) {
  out.emplace_back(Name(param, "step"), torch::tensor(static_cast<int64_t>(s.step()), torch::kInt64));
  out.emplace_back(Name(param, "exp_avg"), Copy(s.exp_avg()));
  out.emplace_back(Name(param, "exp_avg_sq"), Copy(s.exp_avg_sq()));
  if (s.max_exp_avg_sq().defined()) out.emplace_back(Name(param, "max_exp_avg_sq"), Copy(s.max_exp_avg_sq()));
}

// The saved tensor `name`, checked against the parameter's shape.
Result<torch::Tensor> Find(const std::map<std::string, torch::Tensor>& saved, const std::string& name,
                           const torch::Tensor& like) {
  auto it = saved.find(name);
  if (it == saved.end()) return Status::Corruption("checkpoint: missing optimizer tensor " + name);
  if (like.defined() && it->second.sizes() != like.sizes()) {
    return Status::InvalidArgument("checkpoint: optimizer tensor " + name + " has the wrong shape");
  }
  return like.defined() ? it->second.to(like.options()).clone() : it->second.clone();
}

template <typename AdamState>
Status RestoreAdam(AdamState& s, const std::string& param, const torch::Tensor& p,
                   const std::map<std::string, torch::Tensor>& saved) {
  GANTRY_ASSIGN_OR_RETURN(torch::Tensor step, Find(saved, Name(param, "step"), torch::Tensor()));
  s.step(static_cast<std::decay_t<decltype(s.step())>>(step.item<int64_t>()));
  GANTRY_ASSIGN_OR_RETURN(torch::Tensor m, Find(saved, Name(param, "exp_avg"), p));
  GANTRY_ASSIGN_OR_RETURN(torch::Tensor v, Find(saved, Name(param, "exp_avg_sq"), p));
  s.exp_avg(m);
  s.exp_avg_sq(v);
  if (saved.count(Name(param, "max_exp_avg_sq"))) {
    GANTRY_ASSIGN_OR_RETURN(torch::Tensor mx, Find(saved, Name(param, "max_exp_avg_sq"), p));
    s.max_exp_avg_sq(mx);
  }
  return Status::Ok();
}

}  // namespace

Result<NamedTensors> SaveOptimizerState(torch::optim::Optimizer& optimizer, const NamedTensors& params) {
  NamedTensors out;
  try {
    auto& state = optimizer.state();
    for (const auto& [name, p] : params) {
      auto it = state.find(StateKey(state, p));
      if (it == state.end()) continue;
      const torch::optim::OptimizerParamState* s = it->second.get();
      if (auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(s)) {
        if (sgd->momentum_buffer().defined()) out.emplace_back(Name(name, "momentum_buffer"), Copy(sgd->momentum_buffer()));
      } else if (auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(s)) {
        SaveAdam(*adam, name, out);
      } else if (auto* adamw = dynamic_cast<const torch::optim::AdamWParamState*>(s)) {
        SaveAdam(*adamw, name, out);
      } else {
        return Status::InvalidArgument("checkpoint: cannot save the state of this optimizer type "
                                       "(supported: sgd, adam, adamw)");
      }
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("checkpoint: reading optimizer state: ") + e.what());
  }
  return out;
}

Status RestoreOptimizerState(torch::optim::Optimizer& optimizer, const NamedTensors& params,
                             const std::map<std::string, torch::Tensor>& saved) {
  try {
    torch::NoGradGuard no_grad;
    auto& state = optimizer.state();
    state.clear();
    const bool sgd = dynamic_cast<torch::optim::SGD*>(&optimizer) != nullptr;
    const bool adam = dynamic_cast<torch::optim::Adam*>(&optimizer) != nullptr;
    const bool adamw = dynamic_cast<torch::optim::AdamW*>(&optimizer) != nullptr;
    if (!sgd && !adam && !adamw) {
      return Status::InvalidArgument("checkpoint: cannot restore the state of this optimizer type");
    }
    for (const auto& [name, p] : params) {
      const std::string prefix = std::string(kOptimizerTensorPrefix) + name + "/";
      auto first = saved.lower_bound(prefix);
      if (first == saved.end() || first->first.rfind(prefix, 0) != 0) continue;  // no state yet
      if (sgd) {
        auto s = std::make_unique<torch::optim::SGDParamState>();
        GANTRY_ASSIGN_OR_RETURN(torch::Tensor buf, Find(saved, Name(name, "momentum_buffer"), p));
        s->momentum_buffer(buf);
        state[StateKey(state, p)] = std::move(s);
      } else if (adam) {
        auto s = std::make_unique<torch::optim::AdamParamState>();
        GANTRY_RETURN_IF_ERROR(RestoreAdam(*s, name, p, saved));
        state[StateKey(state, p)] = std::move(s);
      } else {
        auto s = std::make_unique<torch::optim::AdamWParamState>();
        GANTRY_RETURN_IF_ERROR(RestoreAdam(*s, name, p, saved));
        state[StateKey(state, p)] = std::move(s);
      }
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("checkpoint: restoring optimizer state: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace gantry::worker
