// thrust::cuda::par.on(stream) for the emulated target: the algorithm runs on Thrust's CPP
// system (the project builds with THRUST_DEVICE_SYSTEM=CPP here), in stream order: the policy
// first runs the work queued on the stream, then opens device memory to the host until the
// call's full expression ends. A Thrust call on a capturing stream is refused, as Thrust's
// synchronising algorithms fail on a GPU.
#pragma once
#include <thrust/execution_policy.h>
#include <thrust/system/system_error.h>

#include <memory>

#include "cuda_runtime.h"
#include "emu_api.h"

namespace thrust {
namespace cuda {

class emulated_stream_policy : public thrust::cpp::execution_policy<emulated_stream_policy> {
 public:
  explicit emulated_stream_policy(cudaStream_t s) {
    if (::cuda_emu::capturing(s))
      throw thrust::system_error(int(cudaErrorStreamCaptureUnsupported), thrust::system_category(),
                                 "a Thrust algorithm on a capturing stream");
    ::cuda_emu::drain(s);
    open_ = std::make_shared<::cuda_emu::DeviceAccess>();
  }

 private:
  std::shared_ptr<::cuda_emu::DeviceAccess> open_;  // shared by the copies Thrust makes
};

struct emulated_par_t {
  emulated_stream_policy on(cudaStream_t s) const { return emulated_stream_policy(s); }
};
inline constexpr emulated_par_t par{};

}  // namespace cuda
}  // namespace thrust
