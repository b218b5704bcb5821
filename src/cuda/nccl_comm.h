// The NCCL communicator of a data-parallel CUDA job: bootstrapped over MPI (rank 0 makes the
// unique id, MPI broadcasts it), as llm.c does; one all-reduce of the gradients per step, on
// the compute stream, inside the captured CUDA Graph (NCCL 2.9+ allows capture).
#pragma once
#include <cstddef>
#include <memory>

#include "convpool/distributed.h"

namespace convpool::cuda {

class NcclComm {
 public:
  // Joins the job's NCCL clique on the current device; a one-line error without NCCL.
  explicit NcclComm(const Communicator& mpi);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;
  // Sums `n` floats of device memory over the ranks, in place, on `stream`.
  void allreduce_sum(float* data, size_t n, void* stream);
  // Waits for `stream` while polling the communicator: a collective whose peer died never
  // completes, so a plain cudaStreamSynchronize would spin forever. An asynchronous NCCL
  // error aborts the communicator and throws one line naming this rank.
  void synchronize(void* stream);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convpool::cuda
