// Linked into the emulated engine's executables only: their launches run barrier-free blocks
// as plain calls after the first block of each launch ran on fibers (cuda_emu.h, BlockMode),
// which keeps a training step to seconds. The kernel parity suite keeps fibers throughout.
#include "cuda_emu.h"

namespace {
const bool g_direct = [] {
  cuda_emu::set_block_mode(cuda_emu::BlockMode::direct);
  return true;
}();
}  // namespace
