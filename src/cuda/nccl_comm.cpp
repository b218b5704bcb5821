#include "nccl_comm.h"

#include "check.h"
#include "convpool/error.h"
#ifdef CONVPOOL_HAVE_NCCL
#include <nccl.h>
#endif

namespace convpool::cuda {

#ifdef CONVPOOL_HAVE_NCCL
#define CP_NCCL_CHECK(call)                                                                 \
  do {                                                                                      \
    const ncclResult_t cp_nccl_rc = (call);                                                 \
    if (cp_nccl_rc != ncclSuccess)                                                          \
      CP_FAIL(#call << " failed: " << ncclGetErrorString(cp_nccl_rc) << " (NCCL_DEBUG=WARN " \
                    << "says more)");                                                       \
  } while (0)

struct NcclComm::Impl {
  ncclComm_t comm = nullptr;
};

NcclComm::NcclComm(const Communicator& mpi) : impl_(std::make_unique<Impl>()) {
  ncclUniqueId id{};
  if (mpi.rank() == 0) CP_NCCL_CHECK(ncclGetUniqueId(&id));
  mpi.broadcast(&id, sizeof id, 0);
  CP_NCCL_CHECK(ncclCommInitRank(&impl_->comm, mpi.size(), id, mpi.rank()));
}

NcclComm::~NcclComm() {
  if (impl_->comm) ncclCommDestroy(impl_->comm);
}

void NcclComm::allreduce_sum(float* data, size_t n, void* stream) {
  if (!n) return;
  CP_NCCL_CHECK(ncclAllReduce(data, data, n, ncclFloat, ncclSum, impl_->comm, as_stream(stream)));
}
#else
struct NcclComm::Impl {};

NcclComm::NcclComm(const Communicator&) {
  CP_USER_ERROR("data-parallel training on CUDA needs NCCL, and this convpool binary was built "
                "without it (NCCL comes with the CUDA toolkit; rebuild where nccl.h is found), "
                "or train data-parallel on the CPU with --device cpu");
}
NcclComm::~NcclComm() = default;
void NcclComm::allreduce_sum(float*, size_t, void*) {}
#endif

}  // namespace convpool::cuda
