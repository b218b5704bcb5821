// The emulator's own tests: what it claims to catch (docs/emulation.md), shown on small
// kernels with known bugs (tests/emu/selftest.cu), and its runtime API.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda_emu.h"
#include "selftest.h"

namespace {

// Runs the test body under one schedule, then restores the previous one.
class ScheduleScope {
 public:
  explicit ScheduleScope(cuda_emu::Schedule s) : previous_(cuda_emu::schedule_name()) {
    cuda_emu::set_schedule(s, 3);
  }
  ~ScheduleScope() {
    cuda_emu::Schedule s;
    uint64_t seed;
    cuda_emu::parse_schedule(previous_, s, seed);
    cuda_emu::set_schedule(s, seed);
  }

 private:
  std::string previous_;
};

std::vector<float> broadcast(int threads, bool barrier) {
  float* d = nullptr;
  EXPECT_EQ(cudaMalloc(&d, threads * sizeof(float)), cudaSuccess);
  emu_selftest::broadcast(d, threads, barrier);
  std::vector<float> out(threads);
  cudaMemcpy(out.data(), d, threads * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(d);
  return out;
}

TEST(Emulator, AMissingSyncthreadsShowsUnderTheReverseSchedule) {
  for (auto s :
       {cuda_emu::Schedule::forward, cuda_emu::Schedule::reverse, cuda_emu::Schedule::random}) {
    ScheduleScope scope(s);
    for (float v : broadcast(64, true)) EXPECT_EQ(v, 42.f) << cuda_emu::schedule_name();
  }
  ScheduleScope scope(cuda_emu::Schedule::reverse);
  const auto racy = broadcast(64, false);
  EXPECT_TRUE(std::isnan(racy[63])) << "thread 63 ran first and read poisoned shared memory";
}

TEST(Emulator, ShufflesAndVotesFollowCuda) {
  int32_t* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 32 * 8 * sizeof(int32_t)), cudaSuccess);
  emu_selftest::shuffles(d);
  std::vector<int32_t> o(32 * 8);
  cudaMemcpy(o.data(), d, o.size() * sizeof(int32_t), cudaMemcpyDeviceToHost);
  cudaFree(d);
  unsigned ballot = 0;
  for (int l = 0; l < 32; l += 3) ballot |= 1u << l;
  for (int lane = 0; lane < 32; ++lane) {
    const int32_t* r = o.data() + lane * 8;
    EXPECT_EQ(r[0], 30) << lane;
    EXPECT_EQ(r[1], lane < 2 ? lane * 10 : (lane - 2) * 10) << lane;
    EXPECT_EQ(r[2], lane + 2 < 32 ? (lane + 2) * 10 : lane * 10) << lane;
    EXPECT_EQ(r[3], (lane ^ 5) * 10) << lane;
    EXPECT_EQ(r[4], lane % 8 + 2 < 8 ? (lane + 2) * 10 : lane * 10) << lane;  // width 8
    EXPECT_EQ(unsigned(r[5]), ballot) << lane;
    EXPECT_EQ(r[6], 1) << lane;
    EXPECT_EQ(r[7], 0) << lane;
  }
}

// Launches queue their kernel; the synchronisation runs it (and its report).
template <class F>
void run_now(F launch) {
  launch();
  cudaDeviceSynchronize();
}

TEST(EmulatorDeathTest, ALaneOutsideItsMaskAborts) {
  EXPECT_DEATH(run_now([&] { emu_selftest::lane_outside_mask(); }),
               "lane [0-9]+ calls __shfl_xor_sync with mask 0x0000ffff, which does not include it");
}

TEST(EmulatorDeathTest, AReadOfALaneThatDidNotTakePartAborts) {
  EXPECT_DEATH(run_now([&] { emu_selftest::read_of_absent_lane(); }), "did not take part");
}

TEST(EmulatorDeathTest, ADeadlockListsTheWaitingThreads) {
  EXPECT_DEATH(run_now([&] { emu_selftest::deadlock(); }),
               "deadlock(.|\n)*lane 0: in __syncwarp(.|\n)*__syncthreads");
}

TEST(EmulatorDeathTest, AStackOverflowFaultsAtOnce) {
  // The guard page below each fiber stack: without it the overflow would silently overwrite
  // the neighbouring thread's stack.
  int out[2];
  EXPECT_DEATH(run_now([&] { emu_selftest::stack_overflow(out); }), "");
}

TEST(Emulator, LaunchErrorsStayUntilRead) {
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  emu_selftest::invalid_launch();
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidConfiguration);  // peek keeps it
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(Emulator, DeviceMemoryStartsPoisoned) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 16 * sizeof(float)), cudaSuccess);
  std::vector<float> h(16);
  cudaMemcpy(h.data(), d, 16 * sizeof(float), cudaMemcpyDeviceToHost);
  for (float v : h) EXPECT_TRUE(std::isnan(v));
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  int not_device = 0;
  EXPECT_EQ(cudaFree(&not_device), cudaErrorInvalidDevicePointer);
  cudaGetLastError();
}

TEST(Emulator, SchedulesParse) {
  cuda_emu::Schedule s;
  uint64_t seed;
  EXPECT_TRUE(cuda_emu::parse_schedule("random:17", s, seed));
  EXPECT_EQ(s, cuda_emu::Schedule::random);
  EXPECT_EQ(seed, 17u);
  EXPECT_TRUE(cuda_emu::parse_schedule("reverse", s, seed));
  EXPECT_FALSE(cuda_emu::parse_schedule("backwards", s, seed));
  EXPECT_FALSE(cuda_emu::parse_schedule("random:", s, seed));
}

}  // namespace
