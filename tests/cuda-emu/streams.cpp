// The emulated target's streams, events and graphs. A stream is a queue of operations that
// runs lazily: nothing queued executes until something waits for it (a stream or event
// synchronisation, a blocking copy, an event wait another stream's work depends on), so a
// missing synchronisation reads stale or poisoned memory instead of winning a race by luck.
// The legacy stream (null) waits for every blocking stream and they for it; streams created
// cudaStreamNonBlocking wait for nothing implicitly. Stream capture records the operations
// into a graph, enforces the rules the CUDA documentation gives for the capture modes, and
// cudaGraphLaunch queues the recording again. Compiled as plain C++, like runtime.cpp.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "cuda_runtime.h"
#include "emu_api.h"

namespace cuda_emu {
namespace {

struct Capture {
  std::vector<Op> ops;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id thread;
  bool invalid = false;
  bool ended = false;
  const char* why = nullptr;  // the call that invalidated it
};

struct StreamState;
struct Dep {
  std::shared_ptr<StreamState> stream;
  uint64_t position;  // satisfied once the stream has executed this many operations
};
struct Item {
  Op op;
  const char* what;
  std::vector<Dep> deps;
};
struct StreamState {
  bool legacy = false, blocking = true;
  std::deque<Item> pending;
  uint64_t enqueued = 0, executed = 0;
  std::shared_ptr<Capture> capture;  // set while the stream takes part in a capture
};

}  // namespace
}  // namespace cuda_emu

struct CUstream_st {
  std::shared_ptr<cuda_emu::StreamState> state;
};
struct CUevent_st {
  bool timing = true;
  bool recorded = false;
  std::shared_ptr<cuda_emu::StreamState> stream;
  uint64_t position = 0;
  std::shared_ptr<double> stamp;  // ms when the record executed (timing events), NaN before
  std::shared_ptr<cuda_emu::Capture> capture;  // recorded inside this capture
};
struct CUgraph_st {
  std::vector<cuda_emu::Op> ops;
};
struct CUgraphExec_st {
  std::shared_ptr<const std::vector<cuda_emu::Op>> ops;
};

namespace cuda_emu {
namespace {

// Every runtime call holds the one runtime mutex (memory.cpp's too); device operations run
// under it.
struct Lock : std::lock_guard<std::recursive_mutex> {
  Lock() : std::lock_guard<std::recursive_mutex>(runtime_mutex()) {}
};
std::shared_ptr<StreamState> g_legacy = [] {
  auto s = std::make_shared<StreamState>();
  s->legacy = true;
  return s;
}();
std::set<CUstream_st*> g_streams;  // live user streams
std::set<CUevent_st*> g_events;
std::set<CUgraph_st*> g_graphs;
std::set<CUgraphExec_st*> g_execs;
std::vector<std::weak_ptr<Capture>> g_captures;  // captures begun and not yet ended

std::shared_ptr<StreamState> state_of(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return g_legacy;
  if (!g_streams.count(s)) return nullptr;
  return s->state;
}

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

void run_until(StreamState& s, uint64_t position) {
  if (s.executed >= position) return;
  DeviceAccess open;  // once for the whole run: opening the mapping costs a system call
  while (s.executed < position) {
    Item item = std::move(s.pending.front());
    s.pending.pop_front();
    for (const Dep& d : item.deps) run_until(*d.stream, d.position);
    item.op();
    ++s.executed;
  }
}
void run_all(StreamState& s) { run_until(s, s.enqueued); }

// The captures a call from this thread is checked against (the capture modes' rules).
std::vector<std::shared_ptr<Capture>> captures_watching() {
  std::vector<std::shared_ptr<Capture>> out;
  for (auto it = g_captures.begin(); it != g_captures.end();) {
    auto c = it->lock();
    if (!c) {
      it = g_captures.erase(it);
      continue;
    }
    ++it;
    if (c->mode == cudaStreamCaptureModeGlobal ||
        (c->mode == cudaStreamCaptureModeThreadLocal && c->thread == std::this_thread::get_id()))
      out.push_back(c);
  }
  return out;
}

void invalidate(Capture& c, const char* why) {
  if (!c.invalid) c.why = why;
  c.invalid = true;
}

}  // namespace

cudaError_t forbidden_during_capture(const char* what) {
  Lock lock;
  const auto watching = captures_watching();
  if (watching.empty()) return cudaSuccess;
  for (auto& c : watching) invalidate(*c, what);
  std::fprintf(stderr, "cuda-emu: %s during stream capture: not permitted, capture invalidated\n",
               what);
  return record_error(cudaErrorStreamCaptureUnsupported);
}

bool valid_stream(cudaStream_t s) {
  Lock lock;
  return state_of(s) != nullptr;
}

bool capturing(cudaStream_t s) {
  Lock lock;
  auto st = state_of(s);
  return st && st->capture;
}

cudaError_t enqueue(cudaStream_t s, const char* what, Op op) {
  Lock lock;
  auto st = state_of(s);
  if (!st) return record_error(cudaErrorInvalidResourceHandle);
  if (st->capture) {
    if (!st->capture->invalid) st->capture->ops.push_back(std::move(op));
    return cudaSuccess;
  }
  if (st->legacy) {
    // The legacy stream would synchronise implicitly with the capturing streams.
    const auto watching = captures_watching();
    if (!watching.empty()) {
      for (auto& c : watching) invalidate(*c, what);
      std::fprintf(stderr, "cuda-emu: %s on the legacy stream during stream capture\n", what);
      return record_error(cudaErrorStreamCaptureImplicit);
    }
  }
  Item item{std::move(op), what, {}};
  if (st->legacy) {
    for (CUstream_st* u : g_streams)
      if (u->state->blocking && u->state->enqueued > u->state->executed)
        item.deps.push_back({u->state, u->state->enqueued});
  } else if (st->blocking && g_legacy->enqueued > g_legacy->executed) {
    item.deps.push_back({g_legacy, g_legacy->enqueued});
  }
  st->pending.push_back(std::move(item));
  ++st->enqueued;
  return cudaSuccess;
}

void drain(cudaStream_t s) {
  Lock lock;
  if (auto st = state_of(s)) run_all(*st);
}

void drain_all() {
  Lock lock;
  run_all(*g_legacy);
  for (CUstream_st* u : g_streams) run_all(*u->state);
}

}  // namespace cuda_emu

using namespace cuda_emu;

cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  if (!s || (flags & ~1u)) return record_error(cudaErrorInvalidValue);
  Lock lock;
  *s = new CUstream_st{std::make_shared<StreamState>()};
  (*s)->state->blocking = !(flags & cudaStreamNonBlocking);
  g_streams.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  Lock lock;
  if (!g_streams.count(s)) return record_error(cudaErrorInvalidResourceHandle);
  // Its queued work still completes, as on a GPU; here, now.
  if (!s->state->capture) run_all(*s->state);
  g_streams.erase(s);
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  Lock lock;
  auto st = state_of(s);
  if (!st) return record_error(cudaErrorInvalidResourceHandle);
  if (st->capture) {
    invalidate(*st->capture, "cudaStreamSynchronize");
    std::fprintf(stderr, "cuda-emu: cudaStreamSynchronize of a capturing stream\n");
    return record_error(cudaErrorStreamCaptureUnsupported);
  }
  if (st->legacy)
    if (cudaError_t e = forbidden_during_capture("cudaStreamSynchronize(legacy stream)")) return e;
  run_all(*st);
  return sync_result();
}
// A GPU makes progress while the host polls: a query that finds work queued runs it and
// still answers cudaErrorNotReady (the work was not done when asked), so a poll loop takes
// its waiting branch once and then ends.
cudaError_t cudaStreamQuery(cudaStream_t s) {
  Lock lock;
  auto st = state_of(s);
  if (!st) return record_error(cudaErrorInvalidResourceHandle);
  if (st->capture) return record_error(cudaErrorStreamCaptureUnsupported);
  if (st->executed == st->enqueued) return sync_result();
  run_all(*st);
  return cudaErrorNotReady;
}
cudaError_t cudaDeviceSynchronize() {
  Lock lock;
  if (cudaError_t e = forbidden_during_capture("cudaDeviceSynchronize")) return e;
  drain_all();
  return sync_result();
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
  Lock lock;
  auto st = state_of(s);
  if (!st) return record_error(cudaErrorInvalidResourceHandle);
  if (st->legacy) return record_error(cudaErrorStreamCaptureUnsupported);
  if (st->capture) return record_error(cudaErrorIllegalState);
  auto c = std::make_shared<Capture>();
  c->mode = mode;
  c->thread = std::this_thread::get_id();
  st->capture = c;
  g_captures.push_back(c);
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  Lock lock;
  auto st = state_of(s);
  if (!st || !graph) return record_error(cudaErrorInvalidValue);
  *graph = nullptr;
  if (!st->capture) return record_error(cudaErrorStreamCaptureUnmatched);
  auto c = st->capture;
  if (c->mode != cudaStreamCaptureModeRelaxed && c->thread != std::this_thread::get_id())
    return record_error(cudaErrorStreamCaptureWrongThread);
  c->ended = true;
  // Every stream that joined the capture leaves it with its origin.
  st->capture = nullptr;
  for (CUstream_st* u : g_streams)
    if (u->state->capture == c) u->state->capture = nullptr;
  if (c->invalid) return record_error(cudaErrorStreamCaptureInvalidated);
  *graph = new CUgraph_st{std::move(c->ops)};
  g_graphs.insert(*graph);
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  Lock lock;
  auto st = state_of(s);
  if (!st || !status) return record_error(cudaErrorInvalidValue);
  *status = !st->capture           ? cudaStreamCaptureStatusNone
            : st->capture->invalid ? cudaStreamCaptureStatusInvalidated
                                   : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags) {
  if (!e || (flags & ~3u)) return record_error(cudaErrorInvalidValue);
  Lock lock;
  *e = new CUevent_st;
  (*e)->timing = !(flags & cudaEventDisableTiming);
  g_events.insert(*e);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  Lock lock;
  if (!g_events.erase(e)) return record_error(cudaErrorInvalidResourceHandle);
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  Lock lock;
  if (!g_events.count(e)) return record_error(cudaErrorInvalidResourceHandle);
  auto st = state_of(s);
  if (!st) return record_error(cudaErrorInvalidResourceHandle);
  if (st->capture) {  // a node of the graph: it orders work inside the capture only
    e->recorded = true;
    e->capture = st->capture;
    e->stream = nullptr;
    e->stamp = nullptr;
    return cudaSuccess;
  }
  auto stamp = std::make_shared<double>(std::nan(""));
  if (cudaError_t err = enqueue(s, "cudaEventRecord", [stamp] { *stamp = now_ms(); })) return err;
  e->recorded = true;
  e->capture = nullptr;
  e->stream = st;
  e->position = st->enqueued;
  e->stamp = e->timing ? stamp : nullptr;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  Lock lock;
  if (!g_events.count(e)) return record_error(cudaErrorInvalidResourceHandle);
  if (e->capture) {
    invalidate(*e->capture, "cudaEventSynchronize");
    return record_error(cudaErrorStreamCaptureUnsupported);
  }
  if (e->recorded) run_until(*e->stream, e->position);
  return sync_result();
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  Lock lock;
  if (!g_events.count(e)) return record_error(cudaErrorInvalidResourceHandle);
  if (!e->recorded || !e->stream) return cudaSuccess;
  if (e->stream->executed >= e->position) return sync_result();
  run_until(*e->stream, e->position);  // progress, as cudaStreamQuery
  return cudaErrorNotReady;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  Lock lock;
  if (!ms || !g_events.count(start) || !g_events.count(end))
    return record_error(cudaErrorInvalidResourceHandle);
  if (!start->timing || !end->timing || !start->stamp || !end->stamp)
    return record_error(cudaErrorInvalidResourceHandle);
  if (std::isnan(*start->stamp) || std::isnan(*end->stamp)) return cudaErrorNotReady;
  *ms = float(*end->stamp - *start->stamp);
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
  Lock lock;
  if (flags) return record_error(cudaErrorInvalidValue);
  if (!g_events.count(e)) return record_error(cudaErrorInvalidResourceHandle);
  auto st = state_of(s);
  if (!st) return record_error(cudaErrorInvalidResourceHandle);
  if (!e->recorded) return cudaSuccess;  // waits for nothing, as documented
  if (e->capture) {
    // Recorded in a capture that has ended: a graph node, nothing a stream can wait for.
    if (e->capture->ended) return record_error(cudaErrorIllegalState);
    if (st->capture == e->capture) return cudaSuccess;  // captured in order already
    if (st->capture) return record_error(cudaErrorStreamCaptureIsolation);
    st->capture = e->capture;  // forked into the capture: its work joins the graph
    return cudaSuccess;
  }
  if (st->capture) {  // a captured graph cannot wait for work outside it
    invalidate(*st->capture, "cudaStreamWaitEvent on an event recorded outside the capture");
    return record_error(cudaErrorStreamCaptureIsolation);
  }
  if (st->legacy)
    if (!captures_watching().empty()) return record_error(cudaErrorStreamCaptureImplicit);
  Item item{[] {}, "cudaStreamWaitEvent", {{e->stream, e->position}}};
  st->pending.push_back(std::move(item));
  ++st->enqueued;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  Lock lock;
  if (!exec || !g_graphs.count(graph)) return record_error(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{std::make_shared<const std::vector<Op>>(graph->ops)};
  g_execs.insert(*exec);
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  Lock lock;
  if (!g_execs.count(exec)) return record_error(cudaErrorInvalidResourceHandle);
  auto ops = exec->ops;  // a destroyed executable's queued launch still runs
  return enqueue(s, "cudaGraphLaunch", [ops] {
    for (const Op& op : *ops) op();
  });
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  Lock lock;
  if (!g_graphs.erase(graph)) return record_error(cudaErrorInvalidValue);
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  Lock lock;
  if (!g_execs.erase(exec)) return record_error(cudaErrorInvalidValue);
  delete exec;
  return cudaSuccess;
}
