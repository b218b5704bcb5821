// convpool's entry point: the commands live in tools/cli_*.cpp, built as a library that the
// fuzz targets also link (tests/fuzz/fuzz_cli.cpp).
#include "cli_common.h"

int main(int argc, char** argv) { return convpool::cli::run_cli(argc, argv); }
