// CPU pooling allocates nothing in a step: the specialised paths keep windows in registers and
// the generic path's per-thread scratch lives in the layer workspace. Counted with a
// replacement of the global operator new (skipped under sanitizers, which own it).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "convpool/conv_engine.h"
#include "convpool/graph.h"
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
std::atomic<size_t> g_largest{0};  // the largest block asked for while counting
}  // namespace

#ifndef CP_TEST_NO_NEW_HOOK
void* operator new(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1);
    size_t seen = g_largest.load();
    while (size > seen && !g_largest.compare_exchange_weak(seen, size)) {
    }
  }
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

// oneDNN takes its buffers (blocked tensors, scratchpads) from posix_memalign, not operator new.
std::atomic<long> g_aligned_allocations{0};
extern "C" void* __libc_memalign(std::size_t alignment, std::size_t size);
extern "C" int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_aligned_allocations.fetch_add(1);
  void* p = __libc_memalign(alignment, size ? size : 1);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
#endif

using namespace convpool;
using namespace convpool::test;

TEST(PoolAllocations, NoneInSteadyStateSteps) {
#ifdef CP_TEST_NO_NEW_HOOK
  GTEST_SKIP() << "operator new belongs to the sanitizer runtime here";
#else
  // Fast paths (2x2, 3x3/3, 3x3/2, window lists, global), the generic path (stochastic,
  // learned mixed), every method at least once.
  const char* lines[] = {
      "pool max size=2",          "pool avg size=3 stride=2",           "pool min size=2",
      "pool lp p=3 size=3",       "pool lp p=2 size=3 stride=2 pad=1",  "pool mixed size=2",
      "pool mixed learned=1 size=3 stride=2",                           "pool stochastic size=2",
      "pool avgtopk k=5 size=3",  "pool avgtopk k=3 size=3 stride=2 pad=1",
      "pool tmaxavg k=2 t=0.1 size=2",                                  "pool softpool size=3",
      "pool avgtopk global k=4",  "pool softpool size=5 stride=2",
      // the window lists (max and min recording their selection) and global sums
      "pool max size=3 stride=2 pad=1", "pool min size=5 stride=2 pad=2",
      "pool mixed size=3 stride=2",     "pool avg global",
      "pool mixed global"};
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

// Counts the allocations of step 3 and of step 4 of a graph built from `m` (a path or a model
// text), warm from steps 1 and 2.
std::array<long, 2> steady_state_allocations(const std::string& m) {
  const ModelSpec spec = m.find('\n') == std::string::npos ? load_model_file(m)
                                                           : parse_model_text(m, "graph.cfg");
  auto g = Graph::build(spec, GraphOptions{Device::cpu, 2, 0});
  g->init_params(3);
  for (size_t i = 0; i < g->input(2).numel(); ++i) g->input(2).data[i] = float(i % 7) * 0.1f;
  for (size_t i = 0; i < g->output_grad(2).numel(); ++i) g->output_grad(2).data[i] = 0.1f;
  std::array<long, 2> counts{};
  for (uint64_t step = 1; step <= 4; ++step) {
    const StepContext ctx{Device::cpu, true, 1, step, nullptr};
    if (step >= 3) g_counting = true;
    g->forward(ctx, 2);
    g->backward(ctx, 2);
    g_counting = false;
    if (step >= 3) counts[step - 3] = g_allocations.exchange(0);
  }
  return counts;
}

struct ConvEngineScope {
  CpuConvEngine saved = cpu_conv_engine();
  explicit ConvEngineScope(CpuConvEngine e) { set_cpu_conv_engine(e); }
  ~ConvEngineScope() { set_cpu_conv_engine(saved); }
};

// Whole training steps of the graph (forward and backward of every node, gradients summed
// where a tensor is read twice) allocate nothing once warm, on a residual BatchNorm network,
// one with the elementwise and joining ops, and one with the pooling ops and global encoders:
// convpool's own code, with convolutions on im2col + OpenBLAS. Not yet weighted_pool, whose
// CPU paths still build their tables in every call.
TEST(GraphAllocations, NoneInSteadyStateSteps) {
#ifdef CP_TEST_NO_NEW_HOOK
  GTEST_SKIP() << "operator new belongs to the sanitizer runtime here";
#else
  ConvEngineScope engine(CpuConvEngine::im2col);
  const std::string models[] = {
      std::string(CONVPOOL_SOURCE_DIR) + "/models/resnet20.cfg",
      "input channels=3 height=8 width=8\nconv name=a filters=4 size=3 padding=same\n"
      "gelu\nconv name=b filters=4 size=1 in=input\nleaky_relu\nconcat name=cat "
      "in=gelu1,leaky_relu1\n"
      "dropout p=0.2\nscale factor=0.5\nadd name=sum in=scale1,cat\npool softpool size=2\n"
      "flatten\ndense units=3\n",
      "input channels=3 height=8 width=8\nconv filters=8 size=3 padding=same\n"
      "pyramid_pool sizes=1,3\nintermap_pool groups=2\nspectral_pool factor=1.5\n"
      "lip_pool size=3 stride=1 pad=1 name=lip\ngem_pool name=gem in=lip\n"
      "attention_pool heads=2 name=att in=lip\ncompact_bilinear d=64 name=cbp in=lip\n"
      "compact_bilinear d=64 algo=fft name=cbf in=lip\n"
      "spp_pool levels=1,2 name=spp in=lip\n"
      "spp_pool levels=1,2 mode=vlad clusters=3 name=vlad in=lip\n"
      "concat in=gem,att,cbp,cbf,spp,vlad\ndense units=3\n"};
  for (const std::string& m : models) {
    g_aligned_allocations = 0;
    const auto counts = steady_state_allocations(m);
    EXPECT_EQ(counts[0], 0) << m;
    EXPECT_EQ(counts[1], 0) << m;
    EXPECT_EQ(g_aligned_allocations.exchange(0), 0) << m;
  }
#endif
}

// With oneDNN's convolutions, the only allocations left are oneDNN's own: its execute() builds
// a small map of the call's arguments each time (src/common/primitive_iface.cpp), which no
// caller can avoid. They are the same in every step and all small: no buffer is allocated.
TEST(GraphAllocations, OnednnConvolutionsAllocateOnlySmallFixedBlocks) {
#ifdef CP_TEST_NO_NEW_HOOK
  GTEST_SKIP() << "operator new belongs to the sanitizer runtime here";
#else
  if (!have_onednn()) GTEST_SKIP() << "this build has no oneDNN";
  ConvEngineScope engine(CpuConvEngine::automatic);
  g_largest = 0;
  g_aligned_allocations = 0;
  const auto counts = steady_state_allocations(std::string(CONVPOOL_SOURCE_DIR) + "/models/resnet20.cfg");
  std::printf("ResNet-20 step with oneDNN convolutions: %ld and %ld allocations, largest %zu bytes\n",
              counts[0], counts[1], g_largest.load());
  EXPECT_EQ(counts[0], counts[1]);
  EXPECT_GT(counts[0], 0);  // were there none, this test should become the zero test
  EXPECT_LE(g_largest.load(), 256u);
  EXPECT_EQ(g_aligned_allocations.exchange(0), 0) << "oneDNN allocated a buffer in a step";
#endif
}
