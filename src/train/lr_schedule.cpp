#include "convpool/lr_schedule.h"

#include <cmath>
#include <sstream>

#include "convpool/error.h"

namespace convpool {

namespace {
constexpr const char* kScheduleNames[] = {"constant", "cosine", "linear", "onecycle", "step"};
}  // namespace

const char* lr_schedule_name(LrScheduleKind kind) { return kScheduleNames[int(kind)]; }

LrScheduleKind parse_lr_schedule_kind(const std::string& name) {
  for (int k = 0; k < int(std::size(kScheduleNames)); ++k)
    if (name == kScheduleNames[k]) return LrScheduleKind(k);
  CP_USER_ERROR("unknown lr schedule '" << name
                                        << "' (expected constant, cosine, linear, onecycle or step)");
}

void validate(const LrSchedule& s) {
  if (!(s.warmup >= 0.f && s.warmup <= 1.f))
    CP_USER_ERROR("--warmup is a fraction of the run's steps and must be in [0, 1] (got "
                  << s.warmup << ")");
  if (!(s.final_ratio >= 0.f && s.final_ratio <= 1.f))
    CP_USER_ERROR("--final-lr-ratio must be in [0, 1] (got " << s.final_ratio << ")");
  if (!(s.start_div >= 1.f && std::isfinite(s.start_div)) ||
      !(s.final_div >= 1.f && std::isfinite(s.final_div)))
    CP_USER_ERROR("--onecycle-start-div and --onecycle-final-div must be finite and at least 1");
  if (!(s.gamma > 0.f && s.gamma <= 1.f))
    CP_USER_ERROR("--lr-gamma must be in (0, 1] (got " << s.gamma << ")");
  if (s.milestone_count < 0 || s.milestone_count > kMaxLrMilestones)
    CP_USER_ERROR("at most " << kMaxLrMilestones << " --lr-milestones");
  for (int i = 1; i < s.milestone_count; ++i)
    if (s.milestones[i] <= s.milestones[i - 1])
      CP_USER_ERROR("--lr-milestones must increase (got " << s.milestones[i - 1] << " then "
                                                          << s.milestones[i] << ")");
  if (s.kind == LrScheduleKind::step && s.milestone_count == 0)
    CP_USER_ERROR("--lr-schedule step needs --lr-milestones (e.g. --lr-milestones 30,60)");
  if (s.kind != LrScheduleKind::step && s.milestone_count > 0)
    CP_USER_ERROR("--lr-milestones only applies to --lr-schedule step");
}

void resolve_schedule(LrSchedule& s, int epochs, uint64_t steps_per_epoch) {
  if (s.milestones_in_epochs) {
    for (int i = 0; i < s.milestone_count; ++i) s.milestones[i] *= steps_per_epoch;
    s.milestones_in_epochs = false;
  }
  if (s.total_steps == 0) s.total_steps = uint64_t(std::max(epochs, 1)) * steps_per_epoch;
}

std::string describe(const LrSchedule& s) {
  std::ostringstream o;
  o << lr_schedule_name(s.kind);
  std::string sep = " (";
  auto item = [&](const auto&... parts) {
    o << sep;
    (o << ... << parts);
    sep = ", ";
  };
  if (s.warmup > 0.f) item(s.kind == LrScheduleKind::onecycle ? "rise " : "warm-up ", s.warmup);
  if (s.kind == LrScheduleKind::cosine || s.kind == LrScheduleKind::linear)
    item("to lr*", s.final_ratio);
  if (s.kind == LrScheduleKind::onecycle)
    item("from lr/", s.start_div, " to lr/", s.start_div, "/", s.final_div);
  if (s.kind == LrScheduleKind::step) {
    std::string at;
    for (int i = 0; i < s.milestone_count; ++i)
      at += (i ? "," : "") + std::to_string(s.milestones[i]);
    item("x", s.gamma, " at ", s.milestones_in_epochs ? "epochs " : "steps ", at);
  }
  if (!is_constant_lr(s)) item(s.total_steps, " steps");
  if (sep == ", ") o << ")";
  return o.str();
}

}  // namespace convpool
