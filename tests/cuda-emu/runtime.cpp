// The emulated CUDA target's thread scheduler (device memory and errors: memory.cpp).
// A grid runs block after block on the calling OS thread; each CUDA thread of a block is a
// fiber (Boost.Context) that runs until it reaches a barrier or a warp collective, then
// yields. The scheduler picks the next runnable fiber in forward, reverse or seeded random
// order, so a missing barrier shows as a stale or poisoned read under some order. Compiled
// as plain C++ (not through emu_device.h): it must not see the CUDA macros.
#include <sys/mman.h>

#include <algorithm>
#include <boost/context/fiber.hpp>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cuda_emu.h"
#include "cuda_runtime.h"
#include "emu_api.h"

#ifdef CUDA_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace cuda_emu {
namespace {

namespace bctx = boost::context;

// ---- schedule, census, grid cap ----
Schedule g_schedule = Schedule::forward;
uint64_t g_seed = 1;
std::mt19937_64 g_rng(1);
std::map<std::string, uint64_t> g_launched;
unsigned g_grid_cap = 0;

// ---- the running block ----
const char* op_name(WarpOp op) {
  static const char* names[] = {"__syncwarp",       "__shfl_sync",     "__shfl_up_sync",
                                "__shfl_down_sync", "__shfl_xor_sync", "__ballot_sync",
                                "__any_sync",       "__all_sync"};
  return names[int(op)];
}

enum class State { runnable, at_syncthreads, at_warp, done };

// Stacks are reused across blocks: a block of 1024 threads would otherwise allocate 1024
// stacks per block. ASan's frames are larger, hence the bigger stacks there. Each stack has an
// inaccessible guard page below it, so a kernel that overflows its stack faults at once
// instead of overwriting another thread's.
#ifdef CUDA_EMU_ASAN
constexpr size_t kStackBytes = 256 * 1024;
#else
constexpr size_t kStackBytes = 64 * 1024;
#endif
constexpr size_t kGuardBytes = 4096;
struct StackPool {
  std::vector<void*> stacks;  // usable bottoms; the guard page lies below each
  ~StackPool() {
    for (void* p : stacks) munmap(static_cast<char*>(p) - kGuardBytes, kGuardBytes + kStackBytes);
  }
};
StackPool g_stack_pool;
std::vector<void*>& g_free_stacks = g_stack_pool.stacks;
void* g_last_stack = nullptr;  // the stack the fiber constructed last was given

struct PooledStack {
  bctx::stack_context allocate() {
    void* p;
    if (g_free_stacks.empty()) {
      void* m = mmap(nullptr, kGuardBytes + kStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED || mprotect(m, kGuardBytes, PROT_NONE) != 0) {
        std::fprintf(stderr, "cuda-emu: cannot allocate a thread stack\n");
        std::abort();
      }
      p = static_cast<char*>(m) + kGuardBytes;
    } else {
      p = g_free_stacks.back();
      g_free_stacks.pop_back();
    }
    g_last_stack = p;
    bctx::stack_context sc;
    sc.size = kStackBytes;
    sc.sp = static_cast<char*>(p) + kStackBytes;
    return sc;
  }
  void deallocate(bctx::stack_context& sc) noexcept {
    g_free_stacks.push_back(static_cast<char*>(sc.sp) - sc.size);
  }
};

struct Thread {
  bctx::fiber fiber;  // the thread, while it is suspended
  bctx::fiber sched;  // the scheduler, while the thread runs
  uint3 idx{};
  int linear = 0;
  State state = State::runnable;
  WarpOp op = WarpOp::sync;
  unsigned mask = 0;
  int arg = 0, width = 32;
  uint64_t value = 0, result = 0;
  void* stack = nullptr;
  void* fake_stack = nullptr;  // ASan's bookkeeping across switches
};

struct Grid {
  const char *name, *file;
  int line;
  KernelBody body;
  void* ctx;
  std::vector<Thread> threads;
  int live = 0;
  bool collective_seen = false;  // some thread reached a barrier or a warp collective
  bool direct = false;           // the threads of this block run as plain calls
};
BlockMode g_block_mode = [] {
  const char* v = std::getenv("CUDA_EMU_BLOCKS");
  return v && std::strcmp(v, "direct") == 0 ? BlockMode::direct : BlockMode::fibers;
}();
bool g_block_mode_forced = std::getenv("CUDA_EMU_BLOCKS") != nullptr;
Grid* g_grid = nullptr;
Thread* g_cur = nullptr;
std::vector<std::pair<void*, size_t>> g_shared;  // every __shared__ variable seen so far
[[maybe_unused]] const void* g_sched_stack_bottom = nullptr;
[[maybe_unused]] size_t g_sched_stack_size = 0;

[[noreturn]] void report(const char* fmt, ...) {
  std::fflush(stdout);
  std::fprintf(stderr, "\ncuda-emu: ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (g_grid) {
    std::fprintf(stderr, "\n  in kernel %s launched at %s:%d, block (%u,%u,%u), schedule %s",
                 g_grid->name, g_grid->file, g_grid->line, blockIdx.x, blockIdx.y, blockIdx.z,
                 schedule_name().c_str());
  }
  std::fprintf(stderr, "\n");
  std::abort();
}

std::string describe(const Thread& t) {
  char buf[160];
  const int n = std::snprintf(buf, sizeof buf, "thread (%u,%u,%u) warp %d lane %d: ", t.idx.x,
                              t.idx.y, t.idx.z, t.linear / 32, t.linear % 32);
  switch (t.state) {
    case State::runnable:
      std::snprintf(buf + n, sizeof buf - n, "runnable");
      break;
    case State::done:
      std::snprintf(buf + n, sizeof buf - n, "exited");
      break;
    case State::at_syncthreads:
      std::snprintf(buf + n, sizeof buf - n, "in __syncthreads");
      break;
    case State::at_warp:
      std::snprintf(buf + n, sizeof buf - n, "in %s(0x%08x)", op_name(t.op), t.mask);
      break;
  }
  return buf;
}

// Switching stacks: tell ASan where the next stack is, or it reports false overflows.
void enter_fiber(Thread& t) {
#ifdef CUDA_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, t.stack, kStackBytes);
  t.fiber = std::move(t.fiber).resume();
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  t.fiber = std::move(t.fiber).resume();
#endif
}
void arrived_in_fiber(Thread& t) {
#ifdef CUDA_EMU_ASAN
  __sanitizer_finish_switch_fiber(t.fake_stack, &g_sched_stack_bottom, &g_sched_stack_size);
#else
  (void)t;
#endif
}
void leave_fiber(Thread& t, bool exiting) {
#ifdef CUDA_EMU_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &t.fake_stack, g_sched_stack_bottom,
                                 g_sched_stack_size);
#else
  (void)t, (void)exiting;
#endif
}

// Suspends the calling thread until the scheduler resumes it.
void park() {
  Thread& t = *g_cur;
  leave_fiber(t, false);
  t.sched = std::move(t.sched).resume();
  arrived_in_fiber(t);
}

void thread_exited(Thread& t) {
  t.state = State::done;
  --g_grid->live;
  // A lane that exits while its warp waits for it in a collective can never arrive.
  const int warp0 = t.linear / 32 * 32, lane = t.linear % 32;
  for (int l = 0; l < 32 && warp0 + l < int(g_grid->threads.size()); ++l) {
    const Thread& u = g_grid->threads[warp0 + l];
    if (u.state == State::at_warp && (u.mask >> lane & 1u))
      report("lane %d exited while %s waits for it", lane, describe(u).c_str());
  }
}

int source_lane(const Thread& t, int lane) {
  const int w = t.width, base = lane / w * w, rel = lane % w;
  switch (t.op) {
    case WarpOp::shfl_idx:
      return base + ((t.arg % w) + w) % w;
    case WarpOp::shfl_up:
      return rel < t.arg ? lane : lane - t.arg;
    case WarpOp::shfl_down:
      return rel + t.arg >= w ? lane : lane + t.arg;
    case WarpOp::shfl_xor: {
      const int src = lane ^ t.arg;
      return src >= base + w ? lane : src;  // a later group: the lane's own value
    }
    default:
      return lane;
  }
}

// The last lane of `mask` to arrive completes the collective for all of them.
bool try_complete(int warp0, unsigned mask) {
  auto& ts = g_grid->threads;
  WarpOp op = WarpOp::sync;
  bool first = true;
  for (int l = 0; l < 32; ++l) {
    if (!(mask >> l & 1u)) continue;
    const Thread& u = ts[warp0 + l];
    if (u.state != State::at_warp || u.mask != mask) return false;
    if (first) op = u.op, first = false;
    if (u.op != op)
      report("lanes of mask 0x%08x meet in different collectives: %s and %s", mask, op_name(op),
             op_name(u.op));
  }
  unsigned votes = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && ts[warp0 + l].value) votes |= 1u << l;
  for (int l = 0; l < 32; ++l) {
    if (!(mask >> l & 1u)) continue;
    Thread& u = ts[warp0 + l];
    switch (op) {
      case WarpOp::sync:
        u.result = 0;
        break;
      case WarpOp::ballot:
        u.result = votes;
        break;
      case WarpOp::any:
        u.result = votes != 0;
        break;
      case WarpOp::all:
        u.result = votes == mask;
        break;
      default: {
        const int src = source_lane(u, l);
        if (!(mask >> src & 1u))
          report("lane %d reads lane %d in %s(0x%08x), but lane %d did not take part", l, src,
                 op_name(op), mask, src);
        u.result = ts[warp0 + src].value;
      }
    }
    u.state = State::runnable;
  }
  return true;
}

// A block whose threads never meet: each runs to its end as a plain call, in the schedule's
// order (what the fibers would do, without a stack switch per thread).
void run_block_direct(unsigned nthreads) {
  Grid& g = *g_grid;
  for (auto& [p, n] : g_shared) std::memset(p, 0xFF, n);
  std::vector<unsigned> order(nthreads);
  for (unsigned i = 0; i < nthreads; ++i)
    order[i] = g_schedule == Schedule::reverse ? nthreads - 1 - i : i;
  if (g_schedule == Schedule::random) std::shuffle(order.begin(), order.end(), g_rng);
  for (unsigned i : order) {
    threadIdx = {i % blockDim.x, i / blockDim.x % blockDim.y, i / (blockDim.x * blockDim.y)};
    g.body(g.ctx);
  }
}

void run_block(unsigned nthreads) {
  Grid& g = *g_grid;
  if (g.direct) return run_block_direct(nthreads);
  for (auto& [p, n] : g_shared) std::memset(p, 0xFF, n);  // stale shared memory reads NaN / -1
  g.threads.resize(nthreads);
  g.live = int(nthreads);
  for (unsigned i = 0; i < nthreads; ++i) {
    Thread& t = g.threads[i];
    t.linear = int(i);
    t.idx = {i % blockDim.x, i / blockDim.x % blockDim.y, i / (blockDim.x * blockDim.y)};
    t.state = State::runnable;
    t.fake_stack = nullptr;
    t.fiber = bctx::fiber(std::allocator_arg, PooledStack{}, [&t](bctx::fiber&& s) {
      arrived_in_fiber(t);
      t.sched = std::move(s);
      g_grid->body(g_grid->ctx);
      thread_exited(t);
      leave_fiber(t, true);
      return std::move(t.sched);
    });
    t.stack = g_last_stack;
  }
  std::vector<int> order(nthreads);
  for (unsigned i = 0; i < nthreads; ++i) order[i] = int(i);
  if (g_schedule == Schedule::reverse) std::reverse(order.begin(), order.end());
  while (g.live > 0) {
    if (g_schedule == Schedule::random) std::shuffle(order.begin(), order.end(), g_rng);
    bool ran = false;
    for (int i : order) {
      Thread& t = g.threads[i];
      if (t.state != State::runnable) continue;
      g_cur = &t;
      threadIdx = t.idx;
      enter_fiber(t);
      ran = true;
    }
    g_cur = nullptr;
    if (ran || g.live == 0) continue;
    // Nothing ran: release __syncthreads if every live thread waits there, else deadlock.
    bool all_at_barrier = true;
    for (auto& t : g.threads)
      all_at_barrier &= t.state == State::done || t.state == State::at_syncthreads;
    if (all_at_barrier) {
      for (auto& t : g.threads)
        if (t.state == State::at_syncthreads) t.state = State::runnable;
      continue;
    }
    std::fprintf(stderr, "\ncuda-emu: deadlock, no thread can run; waiting threads:\n");
    int shown = 0;
    for (auto& t : g.threads)
      if (t.state != State::done && shown++ < 64)
        std::fprintf(stderr, "  %s\n", describe(t).c_str());
    if (shown > 64) std::fprintf(stderr, "  ... and %d more\n", shown - 64);
    report("deadlock");
  }
}

std::string base_name(const char* name) {
  std::string s = name;
  const size_t lt = s.find('<');
  if (lt != std::string::npos) s.resize(lt);
  const size_t colon = s.rfind("::");
  return colon == std::string::npos ? s : s.substr(colon + 2);
}

}  // namespace

// ---- called by the kernels (emu_device.h) ----

[[noreturn]] void direct_block_collective(const char* what) {
  report(
      "%s in a block run without fibers: the first block of this launch reached no barrier "
      "or warp collective, this one does (run with CUDA_EMU_BLOCKS=fibers)",
      what);
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width) {
  if (g_grid && g_grid->direct) direct_block_collective(op_name(op));
  if (!g_cur) report("%s outside a kernel", op_name(op));
  g_grid->collective_seen = true;
  Thread& t = *g_cur;
  const int lane = t.linear % 32, warp0 = t.linear / 32 * 32;
  if (!(mask >> lane & 1u))
    report("lane %d calls %s with mask 0x%08x, which does not include it", lane, op_name(op), mask);
  if (width < 1 || width > 32 || (width & (width - 1)))
    report("%s with width %d", op_name(op), width);
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && warp0 + l >= int(g_grid->threads.size()))
      report("%s(0x%08x) names lane %d, which this block of %zu threads does not have", op_name(op),
             mask, l, g_grid->threads.size());
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && g_grid->threads[warp0 + l].state == State::done)
      report("lane %d calls %s(0x%08x), but lane %d of the mask has exited", lane, op_name(op),
             mask, l);
  t.state = State::at_warp;
  t.op = op;
  t.mask = mask;
  t.value = value;
  t.arg = arg;
  t.width = width;
  if (!try_complete(warp0, mask)) park();
  return t.result;
}

void sync_block() {
  if (g_grid && g_grid->direct) direct_block_collective("__syncthreads");
  if (!g_cur) report("__syncthreads outside a kernel");
  g_grid->collective_seen = true;
  g_cur->state = State::at_syncthreads;
  park();
}

void shared_seen(void* p, size_t bytes) {
  for (auto& s : g_shared)
    if (s.first == p) return;
  // First sight, in the first thread to declare it: nothing has written it yet this block.
  std::memset(p, 0xFF, bytes);
  g_shared.emplace_back(p, bytes);
}

namespace {
void execute_grid(const char* name, const char* file, int line, dim3 grid, dim3 block,
                  KernelBody body, void* ctx) {
  if (g_grid) report("kernel %s launched from inside kernel %s", name, g_grid->name);
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  Grid g{name, file, line, body, ctx, {}, 0};
  g_grid = &g;
  gridDim = grid;
  blockDim = block;
  const unsigned long long blocks = 1ull * grid.x * grid.y * grid.z;
  std::vector<unsigned long long> block_order;  // random: a fresh permutation of the blocks
  if (g_schedule == Schedule::random) {
    block_order.resize(blocks);
    for (unsigned long long k = 0; k < blocks; ++k) block_order[k] = k;
    std::shuffle(block_order.begin(), block_order.end(), g_rng);
  }
  for (unsigned long long k = 0; k < blocks; ++k) {
    unsigned long long b = k;
    if (g_schedule == Schedule::reverse) b = blocks - 1 - k;
    if (g_schedule == Schedule::random) b = block_order[k];
    blockIdx = {unsigned(b % grid.x), unsigned(b / grid.x % grid.y),
                unsigned(b / (1ull * grid.x * grid.y))};
    run_block(unsigned(threads));
    // The first block ran on fibers with every check; when none of its threads met another,
    // BlockMode::direct runs the rest as plain calls (a later block that does meet aborts).
    if (k == 0 && g_block_mode == BlockMode::direct && !g.collective_seen) g.direct = true;
  }
  g.threads.clear();
  g_grid = nullptr;
}
}  // namespace

void run_grid(const char* name, const char* file, int line, dim3 grid, dim3 block, size_t smem,
              cudaStream_t stream, KernelBody body, std::shared_ptr<void> ctx) {
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
      grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 ||
      grid.z > 65535) {
    std::fprintf(stderr,
                 "cuda-emu: %s at %s:%d: invalid launch configuration grid (%u,%u,%u) "
                 "block (%u,%u,%u)\n",
                 name, file, line, grid.x, grid.y, grid.z, block.x, block.y, block.z);
    record_error(cudaErrorInvalidConfiguration);
    return;
  }
  if (smem > 0) {  // no kernel uses dynamic shared memory; a launch asking for it is a bug here
    record_error(cudaErrorInvalidValue);
    return;
  }
  if (g_grid) report("kernel %s launched from inside kernel %s", name, g_grid->name);
  if (!valid_stream(stream)) {
    record_error(cudaErrorInvalidResourceHandle);
    return;
  }
  ++g_launched[base_name(name)];
  if (take_fault_request()) {  // a test asked for a fault: seen at the next synchronisation
    enqueue(stream, name, [] { record_async_fault(); });
    return;
  }
  if (g_grid_cap && grid.x > g_grid_cap) grid.x = g_grid_cap;
  enqueue(stream, name, [=] { execute_grid(name, file, line, grid, block, body, ctx.get()); });
}

// ---- control (cuda_emu.h) ----

void set_schedule(Schedule s, uint64_t seed) {
  g_schedule = s;
  g_seed = seed;
  g_rng.seed(seed);
}
Schedule schedule() { return g_schedule; }
std::string schedule_name() {
  if (g_schedule == Schedule::forward) return "forward";
  if (g_schedule == Schedule::reverse) return "reverse";
  return "random:" + std::to_string(g_seed);
}
bool parse_schedule(const std::string& text, Schedule& s, uint64_t& seed) {
  seed = 1;
  if (text == "forward") return s = Schedule::forward, true;
  if (text == "reverse") return s = Schedule::reverse, true;
  if (text.rfind("random", 0) != 0) return false;
  s = Schedule::random;
  if (text.size() == 6) return true;
  if (text[6] != ':' || text.size() == 7) return false;
  char* end = nullptr;
  seed = std::strtoull(text.c_str() + 7, &end, 10);
  return *end == '\0';
}
std::map<std::string, uint64_t> launched_kernels() { return g_launched; }
void set_block_mode(BlockMode m) {
  if (!g_block_mode_forced) g_block_mode = m;
}
BlockMode block_mode() { return g_block_mode; }
GridCap::GridCap(unsigned cap) : previous_(g_grid_cap) { g_grid_cap = cap; }
GridCap::~GridCap() { g_grid_cap = previous_; }
namespace {
bool g_fault_next = false;
}
FaultNextLaunch::FaultNextLaunch() { g_fault_next = true; }
FaultNextLaunch::~FaultNextLaunch() { g_fault_next = false; }
bool take_fault_request() { return std::exchange(g_fault_next, false); }

}  // namespace cuda_emu
