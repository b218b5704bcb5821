// CP_HD marks functions compiled for both the CPU backend and CUDA kernels, so both
// backends share one definition of every per-element formula.
#pragma once
#if defined(__CUDACC__)
#define CP_HD __host__ __device__ __forceinline__
#else
// Always inlined on the host too, so a constant method or mode folds its switch away.
#define CP_HD inline __attribute__((always_inline))
#endif
