// main() of convpool_emu_tests: the kernel parity suite and the emulator's own tests, run on
// the emulated CUDA target (tests/cuda-emu).
//   --schedule=forward|reverse|random[:SEED]   the order threads and blocks run in
//   --census   after the tests, fail unless every __global__ in kernels/*.cu was launched
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "cuda_emu.h"

namespace convpool::test {

// Every __global__ function in kernels/*.cu, by name, read from the sources.
std::set<std::string> global_kernels_in_sources() {
  std::set<std::string> names;
  // __global__ [__launch_bounds__(...)] void [__launch_bounds__(...)] name(
  const std::regex global(R"(__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+)"
                          R"((?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\()");
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(CONVPOOL_SOURCE_DIR) + "/kernels")) {
    if (e.path().extension() != ".cu") continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    for (std::sregex_iterator it(text.begin(), text.end(), global), end; it != end; ++it)
      names.insert((*it)[1]);
  }
  return names;
}

}  // namespace convpool::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  bool census = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--schedule=", 0) == 0) {
      cuda_emu::Schedule s;
      uint64_t seed;
      if (!cuda_emu::parse_schedule(a.substr(11), s, seed)) {
        std::cerr << "bad --schedule (forward, reverse, random[:SEED]): " << a << "\n";
        return 2;
      }
      cuda_emu::set_schedule(s, seed);
    } else if (a == "--census") {
      census = true;
    } else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  std::cout << "cuda-emu schedule " << cuda_emu::schedule_name() << "\n";
  int rc = RUN_ALL_TESTS();
  if (census) {
    // The census: a kernel that no test launches is a kernel CI never ran.
    const auto launched = cuda_emu::launched_kernels();
    const auto kernels = convpool::test::global_kernels_in_sources();
    std::cout << "kernel census: " << kernels.size() << " __global__ functions in kernels/\n";
    int missing = 0;
    for (const auto& k : kernels) {
      const auto it = launched.find(k);
      const uint64_t n = it == launched.end() ? 0 : it->second;
      std::cout << "  " << k << ": " << n << " launches\n";
      if (!n) ++missing;
    }
    if (kernels.empty() || missing) {
      std::cout << "KERNEL CENSUS FAILED: " << missing << " kernel(s) never launched"
                << (kernels.empty() ? " (or kernels/*.cu could not be read)" : "") << "\n";
      rc = 1;
    }
  }
  return rc;
}
