// The cuFFT subset convpool calls, for the emulated target: single-precision real transforms,
// batched with cufftPlanMany's advanced layout (one dimension, unit strides), run by FFTW's
// FFTW_ESTIMATE plans queued on the plan's stream, so that they are the CPU backend's
// transforms bit for bit. As in cuFFT, a plan allocates its work area when made (which stream
// capture forbids), and C2R may overwrite its input (FFTW's does). Behaviour: cufft.cpp.
#pragma once
#include "cuda_runtime.h"

using cufftHandle = int;
using cufftReal = float;
struct cufftComplex {
  float x, y;
};
enum cufftResult {
  CUFFT_SUCCESS = 0x0,
  CUFFT_INVALID_PLAN = 0x1,
  CUFFT_ALLOC_FAILED = 0x2,
  CUFFT_INVALID_TYPE = 0x3,
  CUFFT_INVALID_VALUE = 0x4,
  CUFFT_INTERNAL_ERROR = 0x5,
  CUFFT_EXEC_FAILED = 0x6,
  CUFFT_SETUP_FAILED = 0x7,
  CUFFT_INVALID_SIZE = 0x8,
  CUFFT_UNALIGNED_DATA = 0x9,
  CUFFT_NOT_SUPPORTED = 0x10,
};
enum cufftType { CUFFT_R2C = 0x2a, CUFFT_C2R = 0x2c };

cufftResult cufftPlanMany(cufftHandle* plan, int rank, int* n, int* inembed, int istride, int idist,
                          int* onembed, int ostride, int odist, cufftType type, int batch);
cufftResult cufftDestroy(cufftHandle plan);
cufftResult cufftSetStream(cufftHandle plan, cudaStream_t stream);
cufftResult cufftExecR2C(cufftHandle plan, cufftReal* idata, cufftComplex* odata);
cufftResult cufftExecC2R(cufftHandle plan, cufftComplex* idata, cufftReal* odata);
