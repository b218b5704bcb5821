// The learning-rate schedule's settings (plain data, passed by value to a CUDA kernel). The
// formula is kernels/lr_schedule.cuh's scheduled_lr, shared by the CPU and the CUDA step.
#pragma once
#include <cstdint>
#include <string>

namespace convpool {

enum class LrScheduleKind : int {
  constant,  // the peak lr (after the warm-up, if any)
  cosine,    // warm-up, then cosine decay to final_ratio * peak at the last step
  linear,    // warm-up, then linear decay to final_ratio * peak at the last step
  onecycle,  // PyTorch's OneCycleLR (anneal_strategy "cos", two phases)
  step,      // warm-up, then times gamma at each milestone
};

constexpr int kMaxLrMilestones = 8;

// Plain data: passed by value to the begin_step kernel.
struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::constant;
  // Fraction of total_steps: a linear ramp to the peak (constant, cosine, linear, step), or
  // OneCycleLR's pct_start (the rising phase, from peak / start_div).
  float warmup = 0.f;
  float final_ratio = 0.f;  // cosine and linear: the last step's lr as a fraction of the peak
  float start_div = 25.f;   // onecycle: the first step's lr is peak / start_div (div_factor)
  float final_div = 1e4f;   // onecycle: the last step's is peak / start_div / final_div
  float gamma = 0.1f;       // step: the factor applied at each milestone
  int milestone_count = 0;
  // step: the optimizer steps (counted from 0, as steps already taken) from which one more
  // factor gamma applies. Given in epochs on the command line, converted once total_steps is
  // known (resolve_schedule in convpool/optim.h).
  uint64_t milestones[kMaxLrMilestones] = {};
  bool milestones_in_epochs = false;  // true until resolved
  uint64_t total_steps = 0;           // epochs * steps per epoch; 0: not resolved yet
};

// A constant lr without warm-up: the peak at every step, whatever the run's length (constexpr:
// also called by kernels/lr_schedule.cuh on the device).
constexpr bool is_constant_lr(const LrSchedule& s) {
  return s.kind == LrScheduleKind::constant && s.warmup <= 0.f;
}
// Whether resolve_schedule has fixed what the formula needs (a constant lr needs nothing).
constexpr bool is_resolved(const LrSchedule& s) {
  return !s.milestones_in_epochs && (s.total_steps > 0 || is_constant_lr(s));
}

// The CLI's and the checkpoints' names: constant, cosine, linear, onecycle, step.
const char* lr_schedule_name(LrScheduleKind kind);
// A one-line error naming the choices for an unknown name.
LrScheduleKind parse_lr_schedule_kind(const std::string& name);
// One-line errors for values out of range (warm-up outside [0, 1], gamma outside (0, 1], ...).
void validate(const LrSchedule& s);
// Fixes the schedule's length once the run's size is known: total_steps (if not yet set) and
// milestones given in epochs into steps. A resumed run keeps its checkpoint's resolution, so
// resuming with a larger --epochs continues at the schedule's last lr.
void resolve_schedule(LrSchedule& s, int epochs, uint64_t steps_per_epoch);
// "onecycle (warm-up 0.15, lr/25 to lr/25/10000, 1000 steps)" for run headers.
std::string describe(const LrSchedule& s);

}  // namespace convpool
