// LrSchedule: the learning rate of every optimizer step.
//
// `step` counts optimizer steps from 1 (the step about to run) to
// total_steps. With base = train.optimizer.lr and W = warmup_steps:
//   warm-up (step <= W): base * step / W, a linear ramp whose first step is
//     already > 0 and whose step W reaches base;
//   then, with d = step - W - 1 (0 on the first step after warm-up) and
//   D = total_steps - W - 1 (d on the last step):
//     constant: base
//     step:     base * gamma^floor(d / step_size)  (PyTorch's StepLR)
//     cosine:   min_lr + (base - min_lr) * (1 + cos(pi * d / D)) / 2, so the
//               first step after warm-up gets base and the last one min_lr.
// Steps past total_steps keep the last value. The schedule is a pure
// function of (step, total_steps), so a resumed job, or one with another
// number of ranks, gets the same rate at the same step.
//
// Thread safety: immutable after Create().
#pragma once

#include <torch/optim/optimizer.h>

#include <cstdint>

#include "common/job_spec.h"
#include "common/status.h"

namespace gantry::worker {

class LrSchedule {
 public:
  // Checks the spec (name, step_size > 0 for step, gamma > 0, min_lr <= lr
  // for cosine, lr > 0) and names the offending field.
  static Result<LrSchedule> Create(const LrScheduleSpec& spec, double base_lr);

  double At(int64_t step, int64_t total_steps) const;
  // Sets At(step, total_steps) as the lr of every parameter group and returns it.
  double Apply(torch::optim::Optimizer& optimizer, int64_t step, int64_t total_steps) const;

 private:
  LrSchedule(LrScheduleSpec spec, double base_lr) : spec_(std::move(spec)), base_lr_(base_lr) {}

  LrScheduleSpec spec_;
  double base_lr_;
};

}  // namespace gantry::worker
