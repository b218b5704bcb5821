// Launchers of the emulator's own test kernels (tests/emu/selftest.cu): small kernels with a
// known bug or a known answer, to show that the emulator catches what it claims to.
#pragma once
#include <cstdint>

namespace emu_selftest {

// Thread 0 writes a shared value that all threads copy out; `barrier` false leaves out the
// __syncthreads between the write and the reads.
void broadcast(float* out, int threads, bool barrier);
// out[lane] for one warp: shfl_idx(src 3), shfl_up(2), shfl_down(2), shfl_xor(5), width 8
// variants, ballot/any/all of (lane % 3 == 0): 8 values per lane.
void shuffles(int32_t* out);
// Lanes 0..31 shuffle with mask 0x0000ffff (lanes 16..31 are outside their own mask).
void lane_outside_mask();
// Lanes 0..15 shuffle with mask 0x0000ffff and read lane ^ 16, which did not take part.
void read_of_absent_lane();
// Half of a warp waits in __syncwarp for lanes that wait in __syncthreads: a deadlock.
void deadlock();
// A launch with 2048 threads per block (invalid).
void invalid_launch();
// A kernel that recurses past its thread's stack.
void stack_overflow(int* out);

}  // namespace emu_selftest
