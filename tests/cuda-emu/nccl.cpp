// The emulated target's NCCL (include/nccl.h).
#include "nccl.h"

#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda_emu.h"
#include "emu_api.h"

// What a queued collective needs, shared with it: captured graphs can outlive an aborted
// communicator, and their collectives then do nothing.
struct NcclShared {
  int rank = 0, nranks = 1;
  MPI_Comm mpi = MPI_COMM_NULL;  // several ranks only
  ncclResult_t async = ncclSuccess;
  bool aborted = false;
};
struct ncclComm {
  std::shared_ptr<NcclShared> s = std::make_shared<NcclShared>();
};

namespace {
thread_local std::string g_last_error;
ncclResult_t fail(ncclResult_t r, const std::string& why) {
  g_last_error = why;
  std::fprintf(stderr, "cuda-emu: NCCL: %s\n", why.c_str());
  return r;
}
// CUDA_EMU_NCCL_PEER_FAILS_AFTER=N: the collectives after the first N fail as if a peer had
// died (NCCL reports that asynchronously, through ncclCommGetAsyncError).
bool peer_fails_now() {
  static const long after = [] {
    const char* v = std::getenv("CUDA_EMU_NCCL_PEER_FAILS_AFTER");
    return v ? std::atol(v) : -1L;
  }();
  static long done = 0;
  return after >= 0 && done++ >= after;
}
}  // namespace

ncclResult_t ncclGetVersion(int* version) {
  if (!version) return ncclInvalidArgument;
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}
ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (!id) return ncclInvalidArgument;
  std::random_device rd;
  for (char& c : id->internal) c = char(rd());
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  if (!comm || nranks < 1 || rank < 0 || rank >= nranks)
    return fail(ncclInvalidArgument, "ncclCommInitRank: invalid rank or size");
  auto* comm_new = new ncclComm;
  NcclShared* c = comm_new->s.get();
  c->rank = rank;
  c->nranks = nranks;
  if (nranks > 1) {
    int ready = 0, world = 0;
    MPI_Initialized(&ready);
    if (!ready) {
      delete comm_new;
      return fail(ncclInvalidUsage, "several ranks need MPI (the emulated NCCL runs over it)");
    }
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world != nranks) {
      delete comm_new;
      return fail(ncclInvalidUsage, "the emulated NCCL spans MPI_COMM_WORLD only");
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &c->mpi);
    // Every rank must hold the same id (the bootstrap's broadcast) ...
    ncclUniqueId root = id;
    MPI_Bcast(root.internal, sizeof root.internal, MPI_BYTE, 0, c->mpi);
    int same = std::memcmp(root.internal, id.internal, sizeof id.internal) == 0, all = 0;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_LAND, c->mpi);
    // ... and its own device: two ranks on one GPU is NCCL's "Duplicate GPU detected".
    char host[64] = {};
    gethostname(host, sizeof host - 1);
    int device = 0;
    cudaGetDevice(&device);
    struct Who {
      char host[64];
      int device;
    } me{}, *everyone = new Who[size_t(nranks)];
    std::memcpy(me.host, host, sizeof host);
    me.device = device;
    MPI_Allgather(&me, sizeof me, MPI_BYTE, everyone, sizeof me, MPI_BYTE, c->mpi);
    int duplicate = -1;
    for (int r = 0; r < nranks; ++r)
      if (r != rank && everyone[r].device == device &&
          std::strncmp(everyone[r].host, host, sizeof host) == 0)
        duplicate = r;
    delete[] everyone;
    if (!all || duplicate >= 0) {
      MPI_Comm_free(&c->mpi);
      delete comm_new;
      if (!all) return fail(ncclInvalidUsage, "the ranks hold different unique ids");
      return fail(ncclInvalidUsage, "Duplicate GPU detected: rank " + std::to_string(rank) +
                                        " and rank " + std::to_string(duplicate) +
                                        " both on CUDA device " + std::to_string(device));
    }
  }
  *comm = comm_new;
  return ncclSuccess;
}

namespace {
ncclResult_t release(ncclComm_t comm) {
  NcclShared& s = *comm->s;
  if (!s.aborted) cuda_emu::drain_all();  // its queued collectives complete first
  s.aborted = true;                       // what a graph still holds does nothing from now
  if (s.mpi != MPI_COMM_NULL) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&s.mpi);
  }
  delete comm;
  return ncclSuccess;
}
}  // namespace
ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclInvalidArgument;
  return release(comm);
}
ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm) return ncclInvalidArgument;
  comm->s->aborted = true;
  return release(comm);
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* error) {
  if (!comm || !error) return ncclInvalidArgument;
  *error = comm->s->async;
  return ncclSuccess;
}
ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  if (!comm || type != ncclFloat || op != ncclSum)
    return fail(ncclInvalidArgument, "ncclAllReduce: only float sums are emulated");
  if (!count) return ncclSuccess;
  if (!cuda_emu::is_device(send, count * 4) || !cuda_emu::is_device(recv, count * 4))
    return fail(ncclInvalidArgument, "ncclAllReduce: buffers must be device memory");
  std::shared_ptr<NcclShared> shared = comm->s;
  const cudaError_t e = cuda_emu::enqueue(stream, "ncclAllReduce", [=] {
    NcclShared* c = shared.get();
    if (c->aborted || c->async != ncclSuccess) return;
    if (peer_fails_now()) {  // CUDA_EMU_NCCL_PEER_FAILS_AFTER: a dead peer, for tests
      c->async = ncclRemoteError;
      return;
    }
    if (c->nranks == 1) {
      if (send != recv) std::memcpy(recv, send, count * 4);
      return;
    }
    const int rc = send == recv
                       ? MPI_Allreduce(MPI_IN_PLACE, recv, int(count), MPI_FLOAT, MPI_SUM, c->mpi)
                       : MPI_Allreduce(send, recv, int(count), MPI_FLOAT, MPI_SUM, c->mpi);
    if (rc != MPI_SUCCESS) c->async = ncclSystemError;
  });
  return e == cudaSuccess ? ncclSuccess : ncclUnhandledCudaError;
}

const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess:
      return "no error";
    case ncclUnhandledCudaError:
      return "unhandled cuda error";
    case ncclSystemError:
      return "unhandled system error";
    case ncclInternalError:
      return "internal error";
    case ncclInvalidArgument:
      return "invalid argument";
    case ncclInvalidUsage:
      return "invalid usage";
    case ncclRemoteError:
      return "remote process exited or there was a network error";
    case ncclInProgress:
      return "NCCL operation in progress";
  }
  return "unknown result code";
}
const char* ncclGetLastError(ncclComm_t) { return g_last_error.c_str(); }
