#include "convpool/precision.h"

#include <atomic>

#include "convpool/error.h"

namespace convpool {

namespace {
std::atomic<Precision> g_precision{Precision::fp32};
}

void set_precision(Precision p) { g_precision = p; }
Precision precision() { return g_precision; }

Precision parse_precision(const std::string& name) {
  for (Precision p : {Precision::fp32, Precision::bf16, Precision::fp16})
    if (name == precision_name(p)) return p;
  CP_USER_ERROR("unknown precision '" << name << "' (choose fp32, bf16 or fp16)");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::fp32:
      return "fp32";
    case Precision::bf16:
      return "bf16";
    case Precision::fp16:
      return "fp16";
  }
  return "?";
}

void require_precision_supported(Precision p, bool cuda) {
  if (p == Precision::fp32) return;
  if (p == Precision::fp16)
    CP_USER_ERROR("--precision fp16 is not built yet: use fp32, or bf16 on a CPU that has it");
  if (cuda)
    CP_USER_ERROR("--precision bf16 runs on the CPU only so far: use fp32 with --device cuda");
  if (!cpu_has_bf16())
    CP_USER_ERROR(
        "--precision bf16 needs a CPU with bf16 arithmetic (AVX512-BF16 or AMX-BF16) "
        "and oneDNN; this one has none: use fp32");
}

}  // namespace convpool
