// Learning-rate schedules, per optimizer step. The one definition of the schedule's formula:
// the CPU's optimizer_step_size (src/train/optim.cpp) calls scheduled_lr on the host, and the
// CUDA begin_step kernel (kernels/optim.cu) calls it on the device from the device's step
// counter, because the captured CUDA Graph cannot take a per-step learning rate from the host.
#pragma once
#include <cmath>
#include <cstdint>

#include "convpool/lr_schedule.h"
#include "optim_math.cuh"
#include "hd.cuh"

namespace convpool {

// cos annealing from `from` (pct 0) to `to` (pct 1), as torch.optim.lr_scheduler does it.
CP_HD double lr_anneal_cos(double from, double to, double pct) {
  return to + (from - to) / 2.0 * (cos(3.14159265358979323846 * pct) + 1.0);
}

// The learning rate of optimizer step `step` (counting from 1), in double, for a peak (the
// --lr) of `peak`. Steps past total_steps keep the last step's lr. A constant schedule
// without warm-up returns `peak` itself, bit for bit.
CP_HD float scheduled_lr(const LrSchedule& s, float peak, uint64_t step) {
  if (is_constant_lr(s)) return peak;
  const double total = double(s.total_steps > 0 ? s.total_steps : 1);
  const double done = double(step > 0 ? step - 1 : 0);  // PyTorch's step_num: steps taken before
  const double last = total - 1.0;
  const double t = done < last ? done : last;
  if (s.kind == LrScheduleKind::onecycle) {
    const double start = double(peak) / double(s.start_div);
    const double end = start / double(s.final_div);
    const double rise_end = double(s.warmup) * total - 1.0;  // OneCycleLR's first phase end
    if (rise_end > 0.0 && t <= rise_end) return float(lr_anneal_cos(start, peak, t / rise_end));
    const double from = rise_end > 0.0 ? rise_end : 0.0;
    const double span = last - from;
    return float(lr_anneal_cos(peak, end, span > 0.0 ? (t - from) / span : 1.0));
  }
  const double warm = floor(double(s.warmup) * total);  // warm-up steps
  if (t < warm) return float(double(peak) * (t + 1.0) / warm);
  double factor = 1.0;
  const double span = last - warm;
  const double q = span > 0.0 ? (t - warm) / span : 1.0;  // decay progress, 0 to 1
  if (s.kind == LrScheduleKind::cosine) {
    factor = s.final_ratio + (1.0 - s.final_ratio) * 0.5 * (1.0 + cos(3.14159265358979323846 * q));
  } else if (s.kind == LrScheduleKind::linear) {
    factor = 1.0 - (1.0 - s.final_ratio) * q;
  } else if (s.kind == LrScheduleKind::step) {
    for (int i = 0; i < s.milestone_count && i < kMaxLrMilestones; ++i)
      if (done >= double(s.milestones[i])) factor *= s.gamma;
  }
  return float(double(peak) * factor);
}

// The optimizer's step size at `step`: the scheduled lr, with Adam's bias correction folded in
// when `adam` (optim_math.cuh adam_step_size).
CP_HD float optimizer_step_size(const LrSchedule& s, float peak, bool adam, float beta1,
                                float beta2, uint64_t step) {
  const float lr = scheduled_lr(s, peak, step);
  return adam ? adam_step_size(lr, beta1, beta2, step) : lr;
}

}  // namespace convpool
