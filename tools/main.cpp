// convpool's entry point: the commands live in tools/cli_*.cpp, built as a library that the
// fuzz targets also link (tests/fuzz/fuzz_cli.cpp). Under mpirun or srun the process joins
// the data-parallel job first (convpool/distributed.h).
#include <cstdio>

#include "cli_common.h"
#include "convpool/distributed.h"
#include "convpool/error.h"

int main(int argc, char** argv) {
  try {
    convpool::init_distributed(&argc, &argv);
  } catch (const convpool::Error& e) {
    std::fprintf(stderr, "convpool: error: %s\n", e.what());
    return 1;
  }
  const int rc = convpool::cli::run_cli(argc, argv);
  convpool::finalize_distributed();
  return rc;
}
