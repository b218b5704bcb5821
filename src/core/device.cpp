#include "convpool/device.h"

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "convpool/error.h"
#ifdef CONVPOOL_HAVE_CUDA
#include <cuda_profiler_api.h>
#include <cudnn.h>

#include "cuda/check.h"
#endif

namespace convpool {

namespace {
std::atomic<bool> g_tf32{false};
}
void set_cuda_tf32(bool on) { g_tf32.store(on); }
bool cuda_tf32() { return g_tf32.load(); }
namespace {
std::atomic<bool> g_deterministic{false};
}
void set_cuda_deterministic(bool on) { g_deterministic.store(on); }
bool cuda_deterministic() { return g_deterministic.load(); }

namespace {
std::atomic<int> g_device_index{0};
}
void set_cuda_device_index(int index) { g_device_index.store(index); }
int cuda_device_index() { return g_device_index.load(); }

std::string parse_device_option(const std::string& text, int* index) {
  *index = 0;
  if (text == "auto" || text == "cpu" || text == "cuda") return text;
  if (text.rfind("cuda:", 0) == 0) {
    const std::string n = text.substr(5);
    int value = 0;
    const auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), value);
    if (!n.empty() && ec == std::errc() && end == n.data() + n.size() && value >= 0) {
      *index = value;
      return "cuda";
    }
    CP_USER_ERROR("'" << text
                      << "': the CUDA device index must be a whole number (cuda:0, cuda:1, ...)");
  }
  CP_USER_ERROR("'" << text << "': the device must be auto, cpu, cuda or cuda:N");
}

bool cuda_archs_run_on(const std::string& archs, int cc) {
  std::string list = archs;
  for (char& ch : list)
    if (ch == ',') ch = ';';  // CMake lists use ';'; the compile definition joins with ','
  std::istringstream in(list);
  for (std::string a; std::getline(in, a, ';');) {
    if (a == "native" || a == "all" || a == "all-major") return true;
    const int built = std::atoi(a.c_str());  // "90a-real" reads 90
    if (built <= 0) continue;
    const bool sass_only = a.find("-real") != std::string::npos;
    if (sass_only ? (built / 10 == cc / 10 && built <= cc) : built <= cc) return true;
  }
  return false;
}

int launcher_local_rank(int fallback) {
  // Slurm's last, and only for a task srun started (SLURM_STEP_ID): inside a batch script a
  // process started by another launcher inherits the script's SLURM_LOCALID=0.
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                           "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"}) {
    if (std::strcmp(name, "SLURM_LOCALID") == 0 && !std::getenv("SLURM_STEP_ID")) continue;
    const char* value = std::getenv(name);
    int rank = 0;
    if (value && *value) {
      const auto [end, ec] = std::from_chars(value, value + std::strlen(value), rank);
      if (ec == std::errc() && *end == 0 && rank >= 0) return rank;
    }
  }
  return fallback;
}

int device_for_local_rank(int local_rank, int device_count) {
  // One visible device per rank (srun --gpus-per-task=1, a CUDA_VISIBLE_DEVICES per rank):
  // each rank's own GPU is its device 0.
  if (device_count == 1) return 0;
  if (local_rank >= device_count)
    CP_USER_ERROR("local rank " << local_rank << " has no GPU of its own (" << device_count
                                << " on this node): run at most " << device_count
                                << " ranks per node, or choose with --device cuda:N");
  return local_rank;
}

#ifndef CONVPOOL_HAVE_CUDA

bool cuda_built() { return false; }
bool cuda_device_available() { return false; }
int cuda_device_count() { return 0; }
void require_cuda_device() {
  CP_USER_ERROR(
      "this convpool binary was built without CUDA (configure found no nvcc, cuDNN "
      "or cuBLAS); rebuild where they are installed, or use --device cpu");
}
std::string cuda_device_report() { return "CUDA backend not built"; }
void cuda_profiler_start() {}
void cuda_profiler_stop() {}

#else

namespace {
// Why there is no usable device, or "" when the selected device can run our kernels.
std::string no_device_reason() {
  int count = 0;
  // Any error here (no driver gives cudaErrorInsufficientDriver) means "no device".
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("no usable CUDA driver/device (") + cudaGetErrorName(err) + ": " +
           cudaGetErrorString(err) + ")";
  }
  if (count == 0) return "no CUDA device found";
  const int device = cuda_device_index();
  if (device >= count)
    return "there is no CUDA device " + std::to_string(device) + " (" + std::to_string(count) +
           " found: cuda:0 to cuda:" + std::to_string(count - 1) + ")";
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess)
    return "cannot query CUDA device " + std::to_string(device);
  const int cc = prop.major * 10 + prop.minor;
  if (!cuda_archs_run_on(CONVPOOL_CUDA_ARCHS, cc))
    return std::string("device ") + prop.name + " has compute capability " +
           std::to_string(prop.major) + "." + std::to_string(prop.minor) +
           " but this binary was built for CUDA architectures " CONVPOOL_CUDA_ARCHS
           "; rebuild with cmake -DCMAKE_CUDA_ARCHITECTURES=" +
           std::to_string(cc);
  return "";
}
}  // namespace

bool cuda_built() { return true; }
bool cuda_device_available() { return no_device_reason().empty(); }
int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}
void require_cuda_device() {
  const std::string why = no_device_reason();
  if (!why.empty()) CP_USER_ERROR("--device cuda: " << why);
}

std::string cuda_device_report() {
  const std::string why = no_device_reason();
  if (!why.empty()) return why;
  cudaDeviceProp prop{};
  CP_CUDA_CHECK(cudaGetDeviceProperties(&prop, cuda_device_index()));
  int driver = 0, runtime = 0;
  CP_CUDA_CHECK(cudaDriverGetVersion(&driver));
  CP_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  std::ostringstream os;
  os << "cuda:" << cuda_device_index() << " " << prop.name << ", compute " << prop.major << "."
     << prop.minor << ", " << prop.totalGlobalMem / (1u << 20) << " MiB, driver " << driver / 1000
     << "." << driver % 1000 / 10 << ", runtime " << runtime / 1000 << "." << runtime % 1000 / 10
     << ", cuDNN " << cudnnGetVersion() << ", built for CUDA architectures " << CONVPOOL_CUDA_ARCHS;
  return os.str();
}

void cuda_profiler_start() { CP_CUDA_CHECK(cudaProfilerStart()); }
void cuda_profiler_stop() { CP_CUDA_CHECK(cudaProfilerStop()); }

#endif

}  // namespace convpool
