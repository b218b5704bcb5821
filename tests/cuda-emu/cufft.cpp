// The emulated target's cuFFT (include/cufft.h): each batch member through FFTW's 1-D plan of
// its size, planned as src/cpu/compact_bilinear_fft.cpp plans it (FFTW_ESTIMATE, on FFTW's
// aligned arrays), so that a transform has the CPU backend's bits wherever the arrays keep
// FFTW's alignment (another plan, FFTW_UNALIGNED, where they do not).
#include "cufft.h"

#include <fftw3.h>

#include <map>
#include <mutex>
#include <tuple>

#include "emu_api.h"

namespace {

struct Plan {
  int n = 0, idist = 0, odist = 0, batch = 0;
  cufftType type = CUFFT_R2C;
  cudaStream_t stream = nullptr;
  void* work = nullptr;  // the work area cuFFT allocates: here only its allocation
};

std::mutex g_mu;
std::map<cufftHandle, Plan> g_plans;
cufftHandle g_next = 1;

// FFTW's plans, kept for the process and destroyed at its exit.
struct FftwPlans {
  std::map<std::tuple<int, int, bool>, fftwf_plan> plans;
  ~FftwPlans() {
    for (auto& entry : plans)
      if (entry.second) fftwf_destroy_plan(entry.second);
  }
};

// FFTW's plan of n points for `type`, aligned or not; made once, under g_mu.
fftwf_plan fftw_plan_for(int n, cufftType type, bool aligned) {
  static FftwPlans owned;
  auto& cache = owned.plans;
  static const bool safe = (fftwf_make_planner_thread_safe(), true);
  (void)safe;
  const auto key = std::make_tuple(n, int(type), aligned);
  if (const auto it = cache.find(key); it != cache.end()) return it->second;
  float* r = fftwf_alloc_real(size_t(n) + 1);
  fftwf_complex* c = fftwf_alloc_complex(size_t(n / 2 + 1) + 1);
  // Unaligned: arrays one float off FFTW's alignment, as the data are.
  float* rr = aligned ? r : r + 1;
  fftwf_complex* cc =
      aligned ? c : reinterpret_cast<fftwf_complex*>(reinterpret_cast<float*>(c) + 1);
  const unsigned flags = FFTW_ESTIMATE | (aligned ? 0u : unsigned(FFTW_UNALIGNED));
  fftwf_plan p = type == CUFFT_R2C ? fftwf_plan_dft_r2c_1d(n, rr, cc, flags)
                                   : fftwf_plan_dft_c2r_1d(n, cc, rr, flags);
  fftwf_free(r);
  fftwf_free(c);
  cache.emplace(key, p);
  return p;
}

bool aligned(const void* p) {
  return fftwf_alignment_of(static_cast<float*>(const_cast<void*>(p))) == 0;
}

cufftResult exec(cufftHandle handle, cufftType type, void* in, void* out, const char* what) {
  Plan plan;
  fftwf_plan aligned_plan, unaligned_plan;
  {
    std::lock_guard lock(g_mu);
    const auto it = g_plans.find(handle);
    if (it == g_plans.end()) return CUFFT_INVALID_PLAN;
    plan = it->second;
    if (plan.type != type) return CUFFT_INVALID_VALUE;
    aligned_plan = fftw_plan_for(plan.n, type, true);
    unaligned_plan = fftw_plan_for(plan.n, type, false);
    if (!aligned_plan || !unaligned_plan) return CUFFT_SETUP_FAILED;
  }
  const bool r2c = type == CUFFT_R2C;
  const size_t in_unit = r2c ? 4 : 8, out_unit = r2c ? 8 : 4;
  const size_t in_len = r2c ? size_t(plan.n) : size_t(plan.n / 2 + 1);
  const size_t out_len = r2c ? size_t(plan.n / 2 + 1) : size_t(plan.n);
  const size_t last = size_t(plan.batch - 1);
  if (!in || !out || !cuda_emu::is_device(in, (last * plan.idist + in_len) * in_unit) ||
      !cuda_emu::is_device(out, (last * plan.odist + out_len) * out_unit))
    return CUFFT_INVALID_VALUE;
  const cudaError_t e = cuda_emu::enqueue(plan.stream, what, [=] {
    for (int b = 0; b < plan.batch; ++b) {
      char* i = static_cast<char*>(in) + size_t(b) * plan.idist * in_unit;
      char* o = static_cast<char*>(out) + size_t(b) * plan.odist * out_unit;
      const fftwf_plan p = aligned(i) && aligned(o) ? aligned_plan : unaligned_plan;
      if (r2c)
        fftwf_execute_dft_r2c(p, reinterpret_cast<float*>(i), reinterpret_cast<fftwf_complex*>(o));
      else
        fftwf_execute_dft_c2r(p, reinterpret_cast<fftwf_complex*>(i), reinterpret_cast<float*>(o));
    }
  });
  return e == cudaSuccess ? CUFFT_SUCCESS : CUFFT_EXEC_FAILED;
}

}  // namespace

cufftResult cufftPlanMany(cufftHandle* handle, int rank, int* n, int* inembed, int istride,
                          int idist, int* onembed, int ostride, int odist, cufftType type,
                          int batch) {
  if (!handle) return CUFFT_INVALID_VALUE;
  if (rank != 1 || !n || n[0] < 1 || batch < 1) return CUFFT_INVALID_SIZE;
  if (type != CUFFT_R2C && type != CUFFT_C2R) return CUFFT_INVALID_TYPE;
  const int len = n[0], half = len / 2 + 1;
  Plan plan{len, idist, odist, batch, type, nullptr, nullptr};
  if (!inembed || !onembed) {  // the basic layout: contiguous arrays
    plan.idist = type == CUFFT_R2C ? len : half;
    plan.odist = type == CUFFT_R2C ? half : len;
  } else if (istride != 1 || ostride != 1 || plan.idist < (type == CUFFT_R2C ? len : half) ||
             plan.odist < (type == CUFFT_R2C ? half : len)) {
    return CUFFT_NOT_SUPPORTED;  // strided layouts: convpool uses none
  }
  if (cudaMalloc(&plan.work, 256) != cudaSuccess) return CUFFT_ALLOC_FAILED;
  std::lock_guard lock(g_mu);
  if (!fftw_plan_for(len, type, true) || !fftw_plan_for(len, type, false)) {
    cudaFree(plan.work);
    return CUFFT_SETUP_FAILED;
  }
  *handle = g_next++;
  g_plans[*handle] = plan;
  return CUFFT_SUCCESS;
}

cufftResult cufftDestroy(cufftHandle handle) {
  void* work = nullptr;
  {
    std::lock_guard lock(g_mu);
    const auto it = g_plans.find(handle);
    if (it == g_plans.end()) return CUFFT_INVALID_PLAN;
    work = it->second.work;
    g_plans.erase(it);
  }
  cudaFree(work);
  return CUFFT_SUCCESS;
}

cufftResult cufftSetStream(cufftHandle handle, cudaStream_t stream) {
  if (!cuda_emu::valid_stream(stream)) return CUFFT_INVALID_VALUE;
  std::lock_guard lock(g_mu);
  const auto it = g_plans.find(handle);
  if (it == g_plans.end()) return CUFFT_INVALID_PLAN;
  it->second.stream = stream;
  return CUFFT_SUCCESS;
}

cufftResult cufftExecR2C(cufftHandle plan, cufftReal* idata, cufftComplex* odata) {
  return exec(plan, CUFFT_R2C, idata, odata, "cufftExecR2C");
}
cufftResult cufftExecC2R(cufftHandle plan, cufftComplex* idata, cufftReal* odata) {
  return exec(plan, CUFFT_C2R, idata, odata, "cufftExecC2R");
}
