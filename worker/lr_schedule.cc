#include "worker/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace gantry::worker {

Result<LrSchedule> LrSchedule::Create(const LrScheduleSpec& spec, double base_lr) {
  auto bad = [](const std::string& field, const std::string& why) {
    return Status::InvalidArgument("job spec: train." + field + " " + why);
  };
  if (!(base_lr > 0) || !std::isfinite(base_lr)) return bad("optimizer.lr", "must be > 0 (got " + std::to_string(base_lr) + ")");
  if (spec.name != "constant" && spec.name != "step" && spec.name != "cosine") {
    return bad("lr_schedule.name", "must be one of constant, step, cosine (got '" + spec.name + "')");
  }
  if (spec.warmup_steps < 0) return bad("lr_schedule.warmup_steps", "must be >= 0");
  if (spec.name == "step" && spec.step_size <= 0) {
    return bad("lr_schedule.step_size", "must be > 0 for the step schedule (got " + std::to_string(spec.step_size) + ")");
  }
  if (!(spec.gamma > 0)) return bad("lr_schedule.gamma", "must be > 0 (got " + std::to_string(spec.gamma) + ")");
  if (spec.name == "cosine" && !(spec.min_lr >= 0 && spec.min_lr <= base_lr)) {
    return bad("lr_schedule.min_lr", "must be between 0 and train.optimizer.lr " + std::to_string(base_lr) +
                                         " (got " + std::to_string(spec.min_lr) + ")");
  }
  return LrSchedule(spec, base_lr);
}

double LrSchedule::At(int64_t step, int64_t total_steps) const {
  step = std::clamp<int64_t>(step, 1, std::max<int64_t>(total_steps, 1));
  const int64_t warmup = spec_.warmup_steps;
  if (step <= warmup) return base_lr_ * static_cast<double>(step) / static_cast<double>(warmup);
  const int64_t d = step - warmup - 1;
  if (spec_.name == "step") {
    return base_lr_ * std::pow(spec_.gamma, static_cast<double>(d / spec_.step_size));
  }
  if (spec_.name == "cosine") {
    const int64_t span = total_steps - warmup - 1;
    if (span <= 0) return base_lr_;  // a single step after warm-up: nothing to anneal over
    const double progress = static_cast<double>(d) / static_cast<double>(span);
    return spec_.min_lr + (base_lr_ - spec_.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  }
  return base_lr_;
}

double LrSchedule::Apply(torch::optim::Optimizer& optimizer, int64_t step, int64_t total_steps) const {
  const double lr = At(step, total_steps);
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
  return lr;
}

}  // namespace gantry::worker
