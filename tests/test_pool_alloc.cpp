// CPU pooling allocates nothing in a step: the specialised paths keep windows in registers and
// the generic path's per-thread scratch lives in the layer workspace (issue 15). Counted with a
// replacement of the global operator new (skipped under sanitizers, which own it).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "layer_harness.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CP_TEST_NO_NEW_HOOK 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CP_TEST_NO_NEW_HOOK 1
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

#ifndef CP_TEST_NO_NEW_HOOK
void* operator new(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

using namespace convpool;
using namespace convpool::test;

TEST(PoolAllocations, NoneInSteadyStateSteps) {
#ifdef CP_TEST_NO_NEW_HOOK
  GTEST_SKIP() << "operator new belongs to the sanitizer runtime here";
#else
  // Fast paths (2x2, 3x3/3, 3x3/2), the generic path (padding, stochastic, learned mixed,
  // global), every method at least once.
  const char* lines[] = {
      "pool max size=2",          "pool avg size=3 stride=2",           "pool min size=2",
      "pool lp p=3 size=3",       "pool lp p=2 size=3 stride=2 pad=1",  "pool mixed size=2",
      "pool mixed learned=1 size=3 stride=2",                           "pool stochastic size=2",
      "pool avgtopk k=5 size=3",  "pool avgtopk k=3 size=3 stride=2 pad=1",
      "pool tmaxavg k=2 t=0.1 size=2",                                  "pool softpool size=3",
      "pool avgtopk global k=4",  "pool softpool size=5 stride=2"};
  for (const char* line : lines) {
    SCOPED_TRACE(line);
    LayerHarness h(line, {1, 4, 12, 12}, 3, 7);
    StepContext ctx;
    ctx.training = true;
    ctx.seed = 7;
    for (int step = 1; step <= 3; ++step) {
      ctx.step = step;
      if (step == 3) g_counting = true;  // the first steps may warm up (OpenMP's pool)
      h.forward(ctx);
      h.backward(ctx);
      g_counting = false;
    }
    EXPECT_EQ(g_allocations.exchange(0), 0) << "allocations in a steady-state step";
  }
#endif
}
