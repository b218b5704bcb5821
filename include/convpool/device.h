// CUDA device discovery. Works in CPU-only builds too (there is then never a device).
#pragma once
#include <string>

namespace convpool {

bool cuda_built();  // was this binary built with the CUDA backend?
// A --device value: "auto", "cpu", "cuda" or "cuda:N" (N a decimal device index). Returns the
// kind ("auto", "cpu" or "cuda") and sets *index to N (0 when not given); throws a one-line
// error for anything else ("cuda:x", "cuda:-1", "cuda:"). Needs no device: it only parses.
std::string parse_device_option(const std::string& text, int* index);
// The CUDA device this process uses (--device cuda:N). Set it before the first CUDA call; the
// checks below and the CUDA context use it. Default 0.
void set_cuda_device_index(int index);
int cuda_device_index();
bool cuda_device_available();  // built with CUDA, a driver is present and a device is usable
int cuda_device_count();       // devices present (0 without CUDA, a driver or a device)
// This process's rank among the ranks of its node, as the launcher says it
// (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, MV2_COMM_WORLD_LOCAL_RANK, then SLURM_LOCALID
// for a task srun started); `fallback` (the world rank: one node) when none is set.
int launcher_local_rank(int fallback);
// The device a data-parallel rank uses when --device names none: one GPU per rank of a node,
// by local rank; device 0 when the rank sees one GPU (bound to it by the launcher). A node
// with more ranks than visible GPUs is a one-line error (NCCL refuses two ranks on one GPU);
// pass --device cuda:N to choose by hand.
int device_for_local_rank(int local_rank, int device_count);
// Throws a one-line error saying why the selected device is not usable (not built, no driver,
// no device, an index beyond the devices present, or an architecture the binary was not
// built for, with how to rebuild).
void require_cuda_device();
// TF32 tensor-core math for cuDNN convolutions and cuBLAS dense layers (default off: plain
// fp32). Process-wide; set it before building a CUDA graph. Results then differ from the CPU
// oracle by up to ~1e-3 relative (TF32 keeps 10 mantissa bits); see docs/benchmarks.md.
void set_cuda_tf32(bool on);
bool cuda_tf32();
// --deterministic on CUDA: cuDNN convolutions use deterministic algorithms only (refused with
// the reason when cuDNN offers none for a shape). Process-wide; set it before building a CUDA
// graph. Our own CUDA reductions are always in a fixed order; docs/pooling.md
// ("Reproducibility") says what is and is not bit for bit.
void set_cuda_deterministic(bool on);
bool cuda_deterministic();

// cudaProfilerStart/Stop: the capture range of `nsys --capture-range=cudaProfilerApi` and
// `ncu --profile-from-start off`. No-ops without CUDA.
void cuda_profiler_start();
void cuda_profiler_stop();

// One line: device name, compute capability, driver/runtime and cuDNN versions, built archs.
std::string cuda_device_report();

// Whether a binary built for `archs` (CMAKE_CUDA_ARCHITECTURES, entries separated by ';' or
// ',': "90", "80-real", "90-virtual", "native", "all", "all-major") can run on a device of
// compute capability `cc` (major * 10 + minor). A plain or -virtual entry ships PTX, which the
// driver compiles for any later device; a -real entry is SASS, which runs only within its
// major version; native/all/all-major are trusted (CMake chose them for the build machine).
bool cuda_archs_run_on(const std::string& archs, int cc);

}  // namespace convpool
