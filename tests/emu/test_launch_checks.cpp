// On the emulated target: the launch checks of src/cuda/check.h.
// A GPU fault is asynchronous: the launch succeeds and some later call reports it. With
// CONVPOOL_CUDA_SYNC=1 the check after every launch synchronises and names the kernel.
// cuda_emu::FaultNextLaunch makes one launch fault as a GPU kernel would.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "convpool/error.h"
#include "cuda_emu.h"
#include "kernels/relu.cuh"

namespace {

class SyncEnv {
 public:
  explicit SyncEnv(const char* value) {
    if (value)
      setenv("CONVPOOL_CUDA_SYNC", value, 1);
    else
      unsetenv("CONVPOOL_CUDA_SYNC");
  }
  ~SyncEnv() { unsetenv("CONVPOOL_CUDA_SYNC"); }
  SyncEnv(const SyncEnv&) = delete;
  SyncEnv& operator=(const SyncEnv&) = delete;
};

struct DeviceFloats {
  explicit DeviceFloats(size_t n) { EXPECT_EQ(cudaMalloc(&p, n * sizeof(float)), cudaSuccess); }
  ~DeviceFloats() { cudaFree(p); }
  float* p = nullptr;
};

TEST(LaunchChecks, SyncModeNamesAFaultingKernelWithItsLauncherLine) {
  const SyncEnv env("1");
  DeviceFloats x(64), y(64);
  const cuda_emu::FaultNextLaunch fault;
  try {
    convpool::cuda::relu_forward(x.p, y.p, 64, nullptr);
    FAIL() << "the fault went unreported";
  } catch (const convpool::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("kernel relu_forward_kernel failed (CONVPOOL_CUDA_SYNC=1)"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("cudaErrorLaunchFailure"), std::string::npos) << msg;
    EXPECT_NE(msg.find("relu.cu:"), std::string::npos) << msg;
  }
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);  // leave no error to later tests
}

TEST(LaunchChecks, WithoutSyncModeAFaultSurfacesOnlyAtTheNextSynchronisation) {
  for (const char* value : {static_cast<const char*>(nullptr), "0"}) {
    const SyncEnv env(value);
    DeviceFloats x(64), y(64);
    {
      const cuda_emu::FaultNextLaunch fault;
      EXPECT_NO_THROW(convpool::cuda::relu_forward(x.p, y.p, 64, nullptr));
    }
    EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
    EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
}

TEST(LaunchChecks, SyncModePassesHealthyLaunches) {
  const SyncEnv env("1");
  DeviceFloats x(64), y(64);
  EXPECT_EQ(cudaMemset(x.p, 0, 64 * sizeof(float)), cudaSuccess);
  EXPECT_NO_THROW(convpool::cuda::relu_forward(x.p, y.p, 64, nullptr));
}

}  // namespace
