// convpool's entry point: the commands live in tools/cli_*.cpp, built as a library that the
// fuzz targets also link (tests/fuzz/fuzz_cli.cpp). Under mpirun or srun the process joins
// the data-parallel job first (convpool/distributed.h).
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "cli_common.h"
#include "convpool/distributed.h"
#include "convpool/error.h"

namespace {
// libgomp's idle workers spin between parallel regions (300,000 turns by default) before they
// sleep, and read how long only once, when the library loads. On a shared machine the spinning
// takes the cores a neighbour needs: two 2-thread trainings on 2 cores kept 14 % of their solo
// rate each. Since oneDNN's convolutions (many more, shorter parallel regions), 1,000 turns keep
// 37 %, 300 turns 43 % and passive waiting 49 %; alone, a ResNet-20 step at batch 32 runs
// about 12 % slower at 300 turns than at 1,000 and 27 % slower passive (batch 128: the same).
// So unless the user chose a policy, the process sets GOMP_SPINCOUNT=300 and restarts itself
// once, before any thread or MPI exists (docs/benchmarks.md).
void limit_openmp_spinning(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("GOMP_SPINCOUNT", "300", 1);
  execv("/proc/self/exe", argv);
  // Not restarted (no /proc): run on with libgomp's default policy.
}
}  // namespace

int main(int argc, char** argv) {
  limit_openmp_spinning(argv);
  // A file-size limit (ulimit -f) then fails the write with EFBIG, which the savers report
  // in one line and clean up after, instead of killing the process mid-save.
  signal(SIGXFSZ, SIG_IGN);
  try {
    convpool::init_distributed(&argc, &argv);
  } catch (const convpool::Error& e) {
    std::fprintf(stderr, "convpool: error: %s\n", convpool::cli::one_line(e.what()).c_str());
    return 1;
  }
  const int rc = convpool::cli::run_cli(argc, argv);
  convpool::finalize_distributed();
  return rc;
}
