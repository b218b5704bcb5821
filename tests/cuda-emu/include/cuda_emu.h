// Control of the emulated CUDA target (tests/cuda-emu), for tests: the thread schedule, the
// kernels launched so far (the kernel census), and a grid cap that stands in for inputs
// larger than a launcher's whole grid, so that grid-stride loops take their second pass.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace cuda_emu {

// The order in which runnable threads (fibers) of a block, and the blocks of a grid, run:
// thread 0 first, the last thread first, or a seeded random order drawn anew each round.
enum class Schedule { forward, reverse, random };
void set_schedule(Schedule s, uint64_t seed = 1);
Schedule schedule();
// "forward", "reverse" or "random:SEED"; parse_schedule reads that form (false if invalid).
std::string schedule_name();
bool parse_schedule(const std::string& text, Schedule& s, uint64_t& seed);

// How the blocks of a launch run. fibers: every thread of every block is a fiber (the kernel
// parity suite). direct: the first block of each launch runs on fibers with every check; when
// none of its threads reached a barrier or warp collective, the other blocks' threads run as
// plain calls, and a later block that does reach one aborts with a report (the whole-step
// runs, where elementwise kernels over millions of elements would otherwise cost a stack
// switch per element). CUDA_EMU_BLOCKS=fibers|direct in the environment overrides it.
enum class BlockMode { fibers, direct };
void set_block_mode(BlockMode m);
BlockMode block_mode();

// Kernel name (template arguments dropped) -> number of launches since the program started.
std::map<std::string, uint64_t> launched_kernels();

// Grid-stride kernels are launched with at most `cap` blocks in x while a GridCap lives (0: no
// cap). Only for launchers whose kernels loop over the grid; the tests scope it to those.
class GridCap {
 public:
  explicit GridCap(unsigned cap);
  ~GridCap();
  GridCap(const GridCap&) = delete;
  GridCap& operator=(const GridCap&) = delete;

 private:
  unsigned previous_;
};

// The next kernel launched while a FaultNextLaunch lives does not run and faults as a GPU
// kernel does (an illegal address, say): the launch itself succeeds, and the next
// cudaDeviceSynchronize or cudaStreamSynchronize returns cudaErrorLaunchFailure. For the tests
// of the synchronous debug mode (CONVPOOL_CUDA_SYNC=1, src/cuda/check.h).
class FaultNextLaunch {
 public:
  FaultNextLaunch();
  ~FaultNextLaunch();
  FaultNextLaunch(const FaultNextLaunch&) = delete;
  FaultNextLaunch& operator=(const FaultNextLaunch&) = delete;
};

// ---- the cuDNN stand-in's algorithm table (tests/cuda-emu/cudnn.cpp) ----
// What cudnnGet*Algorithm_v7 return, best first, for every convolution of a pass: each
// algorithm's determinism, whether it has a tensor-op variant (listed with
// CUDNN_TENSOR_OP_MATH where the descriptor's math type allows tensor ops), the status of its
// entry, and the workspace a batch of n needs, per variant. Running a convolution with less
// workspace than its algorithm needs, for the descriptor's math type at the call, fails with
// CUDNN_STATUS_BAD_PARAM, as cuDNN does.
enum class ConvPass { forward, backward_data, backward_filter };
struct ConvAlgorithm {
  int algo = 0;
  bool deterministic = true;
  bool tensor_ops = false;
  int status = 0;  // a cudnnStatus_t: non-zero entries are listed but unusable
  std::function<size_t(int n, bool tensor_op)> workspace = [](int, bool) { return size_t(0); };
  // The mathType its entry reports (a cudnnMathType_t); -1: cuDNN's rule for the descriptor.
  int listed_math = -1;
};
void set_conv_algorithms(ConvPass pass, std::vector<ConvAlgorithm> best_first);
void reset_conv_algorithms();  // the default table

}  // namespace cuda_emu
