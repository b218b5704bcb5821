#include "convpool/distributed.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "convpool/error.h"
#ifdef CONVPOOL_HAVE_MPI
#include <mpi.h>
#endif

namespace convpool {

std::string nccl_async_failure(int result, const char* text, int rank, int size) {
  constexpr int kSuccess = 0, kInProgress = 7;  // ncclSuccess, ncclInProgress
  if (result == kSuccess || result == kInProgress) return "";
  return "rank " + std::to_string(rank) + " of " + std::to_string(size) +
         ": NCCL failed asynchronously (" + (text ? text : "unknown error") + ", code " +
         std::to_string(result) +
         "): communicator aborted; a peer rank probably died (NCCL_DEBUG=WARN says more)";
}

namespace {
Communicator g_world;
bool g_initialised = false;

// The world size a launcher announced, or 1: Open MPI, MPICH/Hydra (PMI), Slurm.
int launcher_world_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* v = std::getenv(var)) return std::atoi(v);
  if (std::getenv("SLURM_STEP_ID"))
    if (const char* v = std::getenv("SLURM_NTASKS")) return std::atoi(v);
  return 1;
}

#ifdef CONVPOOL_HAVE_MPI
void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  g_world.abort(std::string(what) + " failed: " + std::string(text, size_t(len)), 1);
}
#endif
}  // namespace

const Communicator& world() { return g_world; }

bool mpi_available() {
#ifdef CONVPOOL_HAVE_MPI
  return true;
#else
  return false;
#endif
}

void init_distributed(int* argc, char*** argv) {
  const int announced = launcher_world_size();
#ifdef CONVPOOL_HAVE_MPI
  if (announced <= 1) return;
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  g_initialised = true;
  // Errors come back as codes, so a failed collective is reported (and the job ended) here
  // with the rank's name rather than by MPI's default handler.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_world.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &g_world.size_);
#else
  (void)argc, (void)argv;
  if (announced > 1)
    CP_USER_ERROR("started as one of " << announced
                                       << " ranks, but this convpool binary was built without MPI: "
                                          "install libopenmpi-dev and openmpi-bin "
                                          "(scripts/install-deps) and rebuild for data-parallel "
                                          "training");
#endif
}

void finalize_distributed() {
#ifdef CONVPOOL_HAVE_MPI
  if (g_initialised) MPI_Finalize();
  g_initialised = false;
#endif
}

void Communicator::allreduce_sum(float* data, size_t n) const {
  if (size_ == 1 || n == 0) return;
#ifdef CONVPOOL_HAVE_MPI
  // MPI counts are int: large buffers go in pieces.
  for (size_t at = 0; at < n; at += size_t(1) << 30) {
    const int count = int(std::min(n - at, size_t(1) << 30));
    check(MPI_Allreduce(MPI_IN_PLACE, data + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce of the gradients");
  }
#else
  (void)data;
#endif
}

void Communicator::allreduce_sum(double* data, size_t n) const {
  if (size_ == 1 || n == 0) return;
#ifdef CONVPOOL_HAVE_MPI
  check(MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
        "MPI_Allreduce of the step sums");
#else
  (void)data;
#endif
}

void Communicator::broadcast(float* data, size_t n, int root) const {
  broadcast(static_cast<void*>(data), n * sizeof(float), root);
}

void Communicator::broadcast(void* data, size_t bytes, int root) const {
  if (size_ == 1 || bytes == 0) return;
#ifdef CONVPOOL_HAVE_MPI
  for (size_t at = 0; at < bytes; at += size_t(1) << 30) {
    const int count = int(std::min(bytes - at, size_t(1) << 30));
    check(MPI_Bcast(static_cast<char*>(data) + at, count, MPI_BYTE, root, MPI_COMM_WORLD),
          "MPI_Bcast");
  }
#else
  (void)data, (void)root;
#endif
}

void Communicator::allgather(const int* mine, int count, int* all) const {
  if (size_ == 1) {
    std::copy(mine, mine + count, all);
    return;
  }
#ifdef CONVPOOL_HAVE_MPI
  const size_t ranks = size_t(size_);
  std::vector<int> counts(ranks, 0), offsets(ranks, 0);
  check(MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD),
        "MPI_Allgather");
  for (size_t r = 1; r < ranks; ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
  check(MPI_Allgatherv(mine, count, MPI_INT, all, counts.data(), offsets.data(), MPI_INT,
                       MPI_COMM_WORLD),
        "MPI_Allgatherv");
#endif
}

void Communicator::abort(const std::string& message, int code) const {
  std::fprintf(stderr, "convpool: rank %d of %d: %s\n", rank_, size_, message.c_str());
  std::fflush(stderr);
#ifdef CONVPOOL_HAVE_MPI
  if (g_initialised) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::_Exit(code);
}

}  // namespace convpool
