// Data-parallel training over MPI (launched by `mpirun -np N convpool train ...` or Slurm's
// `srun`): the ranks of the job, the collectives the training step needs, and the slice of a
// global batch each rank trains on. A process started on its own is a world of one, and then
// nothing here communicates: single-process runs are bit-identical to builds without MPI.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace convpool {

class Communicator {
 public:
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool distributed() const { return size_ > 1; }
  // Element-wise sums across the ranks, in place (MPI_Allreduce).
  void allreduce_sum(float* data, size_t n) const;
  void allreduce_sum(double* data, size_t n) const;
  // Rank `root`'s values to every rank.
  void broadcast(float* data, size_t n, int root = 0) const;
  void broadcast(void* data, size_t bytes, int root = 0) const;
  // Every rank's `count` ints, in rank order, into `all` (sum of counts), e.g. predictions.
  void allgather(const int* mine, int count, int* all) const;
  // Ends every rank of the job (MPI_Abort) after printing the message, naming this rank.
  [[noreturn]] void abort(const std::string& message, int code) const;

 private:
  friend void init_distributed(int*, char***);
  int rank_ = 0, size_ = 1;
};

// The job's communicator (a world of one until init_distributed found a launcher).
const Communicator& world();

// Joins the MPI job when the process was started by mpirun or srun (a launcher's rank
// variables are set), else stays a world of one. A build without MPI refuses to run as one
// rank of several, saying how to get data-parallel training.
void init_distributed(int* argc, char*** argv);
void finalize_distributed();
// True when this binary was built with MPI (data-parallel training available).
bool mpi_available();

// The samples [begin, end) of a global batch of n that rank r of w trains on: contiguous
// slices whose sizes differ by at most one, in rank order.
struct BatchSlice {
  size_t begin = 0, end = 0;
  size_t size() const { return end - begin; }
};
inline BatchSlice batch_slice(size_t n, int r, int w) {
  return {n * size_t(r) / size_t(w), n * size_t(r + 1) / size_t(w)};
}

// What rank `rank` of `size` says when NCCL's asynchronous error (ncclCommGetAsyncError) is
// `result` (its ncclResult_t value; `text`, NCCL's string for it): "" for success and for
// an operation still in progress, else one line that names the rank and the abort.
std::string nccl_async_failure(int result, const char* text, int rank, int size);

}  // namespace convpool
