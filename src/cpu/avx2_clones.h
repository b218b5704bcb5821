// CONVPOOL_AVX2_CLONES marks a hot CPU loop to be built for AVX2 as well as the default
// target, the one to run chosen at load time: the same operations lane by lane (the CPU ops
// are built without FMA contraction), so the same bits on either, and the CUDA kernels' bits
// on the emulated target. GCC only; sanitizer builds keep the default build alone, so that
// CI's sanitizer run tests that one.
#pragma once

#if defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define CONVPOOL_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CONVPOOL_AVX2_CLONES
#endif
