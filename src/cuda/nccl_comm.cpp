#include "nccl_comm.h"

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "check.h"
#include "convpool/error.h"
#ifdef CONVPOOL_HAVE_NCCL
#include <nccl.h>
#endif

namespace convpool::cuda {

#ifdef CONVPOOL_HAVE_NCCL
#define CP_NCCL_CHECK(call)                                                                  \
  do {                                                                                       \
    const ncclResult_t cp_nccl_rc = (call);                                                  \
    if (cp_nccl_rc != ncclSuccess)                                                           \
      CP_FAIL(#call << " failed: " << ncclGetErrorString(cp_nccl_rc) << " (NCCL_DEBUG=WARN " \
                    << "says more)");                                                        \
  } while (0)

struct NcclComm::Impl {
  ncclComm_t comm = nullptr;
  int rank = 0, size = 1;
  // How long a wait may see no completion before this rank gives up: a peer that hangs
  // instead of dying reports no error. CONVPOOL_NCCL_TIMEOUT (seconds) sets it.
  double timeout_s = 1800;
};

NcclComm::NcclComm(const Communicator& mpi) : impl_(std::make_unique<Impl>()) {
  impl_->rank = mpi.rank();
  impl_->size = mpi.size();
  if (const char* t = std::getenv("CONVPOOL_NCCL_TIMEOUT")) {
    char* end = nullptr;
    const double v = std::strtod(t, &end);
    if (!*t || *end || !(v > 0))
      CP_USER_ERROR("CONVPOOL_NCCL_TIMEOUT='" << t << "': a number of seconds above 0");
    impl_->timeout_s = v;
  }
  ncclUniqueId id{};
  if (mpi.rank() == 0) CP_NCCL_CHECK(ncclGetUniqueId(&id));
  mpi.broadcast(&id, sizeof id, 0);
  CP_NCCL_CHECK(ncclCommInitRank(&impl_->comm, mpi.size(), id, mpi.rank()));
}

NcclComm::~NcclComm() {
  if (impl_->comm) ncclCommDestroy(impl_->comm);
}

void NcclComm::synchronize(void* stream) {
  cudaStream_t s = as_stream(stream);
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t done = cudaStreamQuery(s);
    ncclResult_t async = ncclSuccess;
    CP_NCCL_CHECK(ncclCommGetAsyncError(impl_->comm, &async));
    if (const std::string why =
            nccl_async_failure(int(async), ncclGetErrorString(async), impl_->rank, impl_->size);
        !why.empty()) {
      ncclCommAbort(impl_->comm);  // frees this rank from the collective; the job must end
      impl_->comm = nullptr;
      CP_FAIL(why);
    }
    if (done == cudaSuccess) return;
    if (done != cudaErrorNotReady) CP_CUDA_CHECK(done);
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > impl_->timeout_s) {
      ncclCommAbort(impl_->comm);
      impl_->comm = nullptr;
      CP_FAIL("rank " << impl_->rank << " of " << impl_->size << ": the GPU has not finished "
                      << "the queued data-parallel steps in " << impl_->timeout_s
                      << " s (a peer rank may hang; CONVPOOL_NCCL_TIMEOUT sets the limit): "
                      << "communicator aborted");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void NcclComm::allreduce_sum(float* data, size_t n, void* stream) {
  if (!n) return;
  CP_NCCL_CHECK(ncclAllReduce(data, data, n, ncclFloat, ncclSum, impl_->comm, as_stream(stream)));
}
#else
struct NcclComm::Impl {};

NcclComm::NcclComm(const Communicator&) {
  CP_USER_ERROR(
      "data-parallel training on CUDA needs NCCL, and this convpool binary was built "
      "without it (NCCL comes with the CUDA toolkit; rebuild where nccl.h is found), "
      "or train data-parallel on the CPU with --device cpu");
}
NcclComm::~NcclComm() = default;
void NcclComm::allreduce_sum(float*, size_t, void*) {}
void NcclComm::synchronize(void*) {}
#endif

}  // namespace convpool::cuda
