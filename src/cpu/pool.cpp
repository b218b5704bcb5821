#include "pool.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/philox.cuh"
#include "pool_fast.h"
#include "pool_simd.h"

namespace convpool::cpu {

namespace {

// The per-window parameters with the method fixed at compile time (so the method switch in
// pool_math.cuh folds away) and the draw for this output (stochastic, rsp).
template <PoolMethod M>
inline PoolWindowParams for_window(const PoolWindowParams& base, const PoolRng& rng,
                                   uint64_t out_index) {
  PoolWindowParams p = base;
  p.method = M;
  if constexpr (pool_draws_per_window(M))
    if (p.training)
      p.u = philox_uniform(rng.seed, kRngPoolSample, rng.layer, uint32_t(rng.step),
                           rng.first_output + out_index);
  return p;
}

// True when every window is a whole 2x2 square inside the plane: the common case, where the
// window size is a compile-time 4 and the per-window math unrolls.
bool all_full_2x2(const PoolGeom& g) {
  return g.KH == 2 && g.KW == 2 && g.PH == 0 && g.PW == 0 && (g.OH - 1) * g.SH + 2 <= g.H &&
         (g.OW - 1) * g.SW + 2 <= g.W;
}

// Window (oh, ow) into v (and its plane offsets into src), in pool_gather_window's order.
// kFull4: the window is a full 2x2 square (all_full_2x2), so the count is the constant 4.
template <bool kFull4>
inline int gather(const PoolGeom& g, const float* xp, int oh, int ow, float* v, int* src) {
  if constexpr (kFull4) {
    const int o = oh * g.SH * g.W + ow * g.SW;
    src[0] = o, src[1] = o + 1, src[2] = o + g.W, src[3] = o + g.W + 1;
    for (int i = 0; i < 4; ++i) v[i] = pool_input(g, xp[src[i]]);
    return 4;
  } else {
    return pool_gather_window(g, xp, oh, ow, v, src);
  }
}

// The generic path's scratch (pool_scratch_floats): one double per plane for dlambda, then
// per thread `win` values, `win` gradients and `win` offsets.
struct Scratch {
  float* base;
  int threads;
  double* lambda_parts() const { return reinterpret_cast<double*>(base); }
  float* thread_block(const PoolGeom& g, int n, int t) const {
    return base + 2 * size_t(n) * g.C + size_t(t) * 3 * g.KH * g.KW;
  }
};

template <PoolMethod M, bool kFull4>
void forward_impl(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                  const float* x, float* y, const Scratch& s) {
  const int planes = n * g.C, win = g.KH * g.KW;
#pragma omp parallel num_threads(s.threads)
  {
    float* v = s.thread_block(g, n, omp_get_thread_num());
    int* src = reinterpret_cast<int*>(v + 2 * win);
#pragma omp for schedule(static)
    for (int pl = 0; pl < planes; ++pl) {
      const float* xp = x + size_t(pl) * g.H * g.W;
      for (int oh = 0; oh < g.OH; ++oh)
        for (int ow = 0; ow < g.OW; ++ow) {
          const uint64_t oi = (uint64_t(pl) * g.OH + oh) * g.OW + ow;
          const int cnt = gather<kFull4>(g, xp, oh, ow, v, src);
          const int divisor = g.include_pad ? win : cnt;
          y[oi] = pool_window_forward(for_window<M>(p, rng, oi), v, cnt, divisor);
        }
    }
  }
}

template <PoolMethod M, bool kFull4>
void backward_impl(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                   const float* x, const float* y, const float* dy, float* dx, float* dlambda,
                   const Scratch& s) {
  const int planes = n * g.C, win = g.KH * g.KW;
  // Per-plane partial sums, added in order afterwards, keep dlambda deterministic.
  double* lambda_part = s.lambda_parts();
  if (dlambda) std::fill(lambda_part, lambda_part + planes, 0.0);
#pragma omp parallel num_threads(s.threads)
  {
    float* v = s.thread_block(g, n, omp_get_thread_num());
    float* gr = v + win;
    int* src = reinterpret_cast<int*>(v + 2 * win);
#pragma omp for schedule(static)
    for (int pl = 0; pl < planes; ++pl) {
      const float* xp = x + size_t(pl) * g.H * g.W;
      float* dxp = dx ? dx + size_t(pl) * g.H * g.W : nullptr;  // null: dlambda only
      if (dxp) std::fill(dxp, dxp + g.H * g.W, 0.f);
      for (int oh = 0; oh < g.OH; ++oh)
        for (int ow = 0; ow < g.OW; ++ow) {
          const uint64_t oi = (uint64_t(pl) * g.OH + oh) * g.OW + ow;
          const int cnt = gather<kFull4>(g, xp, oh, ow, v, src);
          const int divisor = g.include_pad ? win : cnt;
          if (dxp) {
            pool_window_backward(for_window<M>(p, rng, oi), v, cnt, divisor, y[oi], dy[oi], gr);
            for (int i = 0; i < cnt; ++i) dxp[src[i]] += gr[i];
          }
          if (dlambda)
            lambda_part[pl] += double(dy[oi]) *
                               (v[pool_argmax(v, cnt)] - pool_mean(v, cnt, divisor));
        }
      if (dxp && g.relu_in)
        for (int i = 0; i < g.H * g.W; ++i) dxp[i] = pool_input_grad(g, xp[i], dxp[i]);
    }
  }
  if (dlambda) {
    double sum = 0;
    for (int pl = 0; pl < planes; ++pl) sum += lambda_part[pl];
    *dlambda = float(sum);
  }
}

// Runs F<M>(args...) for the runtime method m.
template <template <PoolMethod> class F, class... Args>
void dispatch(PoolMethod m, Args&&... args) {
#define CONVPOOL_POOL_DISPATCH_ROW(id, ...) \
  case PoolMethod::id:                      \
    return F<PoolMethod::id>::run(args...);
  switch (m) { CONVPOOL_POOL_METHODS(CONVPOOL_POOL_DISPATCH_ROW, ) }
#undef CONVPOOL_POOL_DISPATCH_ROW
}

template <PoolMethod M>
struct Forward {
  static void run(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                  const float* x, float* y, const Scratch& s) {
    if (all_full_2x2(g)) return forward_impl<M, true>(g, p, rng, n, x, y, s);
    forward_impl<M, false>(g, p, rng, n, x, y, s);
  }
};
template <PoolMethod M>
struct Backward {
  static void run(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                  const float* x, const float* y, const float* dy, float* dx, float* dlambda,
                  const Scratch& s) {
    if (all_full_2x2(g)) return backward_impl<M, true>(g, p, rng, n, x, y, dy, dx, dlambda, s);
    backward_impl<M, false>(g, p, rng, n, x, y, dy, dx, dlambda, s);
  }
};

// One output row of full 2x2 max windows at stride 2, four outputs at a time: the even and
// odd columns of both input rows are split by shuffles of contiguous loads (strided scalar
// loads were the cost). The tournament and its tie/NaN rule are the scalar loop's below.
// Returns the first output it left to the caller.
int max2x2_stride2_row(const float* r0, const float* r1, int row, int W, int OW, bool relu,
                       float* yrow, int32_t* arow) {
  using simd::vf;
  using simd::vi;
  auto input = [relu](vf v) { return relu ? simd::sel((v > 0.f) | simd::isnan(v), v, vf{}) : v; };
  auto later_wins = [](vf later, vf earlier) {
    return (later > earlier) | (simd::isnan(later) & ~simd::isnan(earlier));
  };
  int ow = 0;
  for (; ow + 4 <= OW; ow += 4) {
    vf lo0, hi0, lo1, hi1;
    std::memcpy(&lo0, r0 + 2 * ow, sizeof lo0);
    std::memcpy(&hi0, r0 + 2 * ow + 4, sizeof hi0);
    std::memcpy(&lo1, r1 + 2 * ow, sizeof lo1);
    std::memcpy(&hi1, r1 + 2 * ow + 4, sizeof hi1);
    const vf a = input(__builtin_shufflevector(lo0, hi0, 0, 2, 4, 6));
    const vf b = input(__builtin_shufflevector(lo0, hi0, 1, 3, 5, 7));
    const vf d0 = input(__builtin_shufflevector(lo1, hi1, 0, 2, 4, 6));
    const vf d1 = input(__builtin_shufflevector(lo1, hi1, 1, 3, 5, 7));
    const vi tb = later_wins(b, a), td = later_wins(d1, d0);
    const vf top = simd::sel(tb, b, a), bottom = simd::sel(td, d1, d0);
    const vi first = vi{0, 2, 4, 6} + (row + 2 * ow);
    const vi itop = first - tb, ibottom = first + W - td;  // a true mask is -1
    const vi tt = later_wins(bottom, top);
    const vf y = simd::sel(tt, bottom, top);
    const vi at = tt ? ibottom : itop;
    std::memcpy(yrow + ow, &y, sizeof y);
    std::memcpy(arow + ow, &at, sizeof at);
  }
  return ow;
}

// Max pooling, the common case, without the generic gather: same result and tie/NaN rules
// as pool_argmax (first NaN wins, then the first maximum), and the choice is recorded.
template <bool kFull4>
void max_forward_recording(const PoolGeom& g, int n, const float* x, float* y, int32_t* argmax) {
  const int planes = n * g.C;
#pragma omp parallel for schedule(static)
  for (int pl = 0; pl < planes; ++pl) {
    const float* xp = x + size_t(pl) * g.H * g.W;
    float* yp = y + size_t(pl) * g.OH * g.OW;
    int32_t* ap = argmax + size_t(pl) * g.OH * g.OW;
    if constexpr (kFull4) {
      // A tournament (a vs b, c vs d, then the winners) in which the later side wins only if
      // strictly better picks what the in-order scan picks; written so the row vectorises.
      auto later_wins = [](float later, float earlier) {
        return (later > earlier) | ((later != later) & (earlier == earlier));
      };
      for (int oh = 0; oh < g.OH; ++oh) {
        const int row = oh * g.SH * g.W;
        const float* r0 = xp + row;
        const float* r1 = r0 + g.W;
        float* yrow = yp + oh * g.OW;
        int32_t* arow = ap + oh * g.OW;
        const int done = g.SW == 2 ? max2x2_stride2_row(r0, r1, row, g.W, g.OW, g.relu_in, yrow, arow) : 0;
#pragma omp simd
        for (int ow = done; ow < g.OW; ++ow) {
          const int c = ow * g.SW;
          const float a = pool_input(g, r0[c]), b = pool_input(g, r0[c + 1]);
          const float d0 = pool_input(g, r1[c]), d1 = pool_input(g, r1[c + 1]);
          const bool tb = later_wins(b, a), td = later_wins(d1, d0);
          const float top = cp_select(tb, b, a), bottom = cp_select(td, d1, d0);
          const int itop = row + c + int(tb), ibottom = row + g.W + c + int(td);
          const bool tt = later_wins(bottom, top);
          yrow[ow] = cp_select(tt, bottom, top);
          arow[ow] = cp_select(tt, ibottom, itop);
        }
      }
      continue;
    }
    for (int oh = 0; oh < g.OH; ++oh) {
      const int h0 = std::max(oh * g.SH - g.PH, 0), h1 = std::min(oh * g.SH - g.PH + g.KH, g.H);
      for (int ow = 0; ow < g.OW; ++ow) {
        const int w0 = std::max(ow * g.SW - g.PW, 0), w1 = std::min(ow * g.SW - g.PW + g.KW, g.W);
        int best = h0 * g.W + w0;
        float m = pool_input(g, xp[best]);
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w) {
            // Branch-free: the comparison outcome is data-dependent and mispredicts often.
            const float v = pool_input(g, xp[h * g.W + w]);
            const bool take = (v > m) | ((v != v) & (m == m));
            m = take ? v : m;
            best = take ? h * g.W + w : best;
          }
        yp[oh * g.OW + ow] = m;
        ap[oh * g.OW + ow] = best;
      }
    }
  }
}

void scatter_to_argmax(const PoolGeom& g, int n, const float* x, const float* dy,
                       const int32_t* argmax, float* dx) {
  const int planes = n * g.C;
#pragma omp parallel for schedule(static)
  for (int pl = 0; pl < planes; ++pl) {
    float* dxp = dx + size_t(pl) * g.H * g.W;
    std::fill(dxp, dxp + g.H * g.W, 0.f);
    const size_t o = size_t(pl) * g.OH * g.OW;
    for (int i = 0; i < g.OH * g.OW; ++i) dxp[argmax[o + i]] += dy[o + i];
    if (g.relu_in) {
      const float* xp = x + size_t(pl) * g.H * g.W;
      for (int i = 0; i < g.H * g.W; ++i) dxp[i] = pool_input_grad(g, xp[i], dxp[i]);
    }
  }
}

// The caller's scratch, or (null) one of our own for the current thread count.
Scratch scratch_for(const PoolGeom& g, int n, float* scratch, int threads,
                    std::vector<float>& own) {
  const int max_threads = omp_get_max_threads();
  if (!scratch) {
    own.resize(pool_scratch_floats(g, n, max_threads));
    return {own.data(), max_threads};
  }
  return {scratch, std::max(1, std::min(threads, max_threads))};
}

}  // namespace

size_t pool_scratch_floats(const PoolGeom& g, int n, int threads) {
  return 2 * size_t(n) * g.C + size_t(threads) * 3 * g.KH * g.KW;
}

void pool_forward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                  const float* x, float* y, int32_t* argmax, float* scratch,
                  int scratch_threads) {
  // Max (and min, and training-time stochastic pooling, where the fast paths record it): the
  // selection is recorded for a scatter-only backward.
  if (argmax && (p.method == PoolMethod::min || p.method == PoolMethod::stochastic) &&
      pool_fast_records_selection(g, p))
    return pool_fast_select_recording(g, p, rng, n, x, y, argmax);
  if (p.method == PoolMethod::max && argmax) {
    if (all_full_2x2(g)) return max_forward_recording<true>(g, n, x, y, argmax);
    if (pool_fast_records_selection(g, p))
      return pool_fast_select_recording(g, p, rng, n, x, y, argmax);
    return max_forward_recording<false>(g, n, x, y, argmax);
  }
  if (pool_fast_covers(g, p, false)) return pool_forward_fast(g, p, rng, n, x, y);
  std::vector<float> own;
  dispatch<Forward>(p.method, g, p, rng, n, x, y, scratch_for(g, n, scratch, scratch_threads, own));
}

void pool_forward_generic(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng,
                          int n, const float* x, float* y) {
  std::vector<float> own;
  dispatch<Forward>(p.method, g, p, rng, n, x, y, scratch_for(g, n, nullptr, 0, own));
}

void pool_backward_generic(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng,
                           int n, const float* x, const float* y, const float* dy, float* dx) {
  std::vector<float> own;
  dispatch<Backward>(p.method, g, p, rng, n, x, y, dy, dx, nullptr,
                     scratch_for(g, n, nullptr, 0, own));
}

const char* pool_path(const PoolGeom& g, const PoolWindowParams& p, bool recording,
                      bool wants_dlambda) {
  const bool selects = p.method == PoolMethod::max || p.method == PoolMethod::min ||
                       p.method == PoolMethod::stochastic;
  if (recording && selects && pool_fast_records_selection(g, p)) {
    if (p.method == PoolMethod::max && all_full_2x2(g)) return "max 2x2, recording";
    if (p.method == PoolMethod::stochastic) return "stochastic, recording (window lists)";
    const bool max = p.method == PoolMethod::max;
    if (pool_global_covers(g, p))
      return max ? "max, recording (global)" : "min, recording (global)";
    if (pool_lists_cover(g, p))
      return max ? "max, recording (window lists)" : "min, recording (window lists)";
    return max ? "max, recording (window template)" : "min, recording (window template)";
  }
  if (recording && p.method == PoolMethod::max) return "max, recording (any window, scalar)";
  if (const char* fast = pool_fast_path(g, p, wants_dlambda)) return fast;
  return "generic (each window gathered)";
}

void pool_backward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                   const float* x, const float* y, const float* dy, float* dx, float* dlambda,
                   const int32_t* argmax, float* scratch, int scratch_threads) {
  if (argmax && (p.method == PoolMethod::max ||
                 ((p.method == PoolMethod::min || p.method == PoolMethod::stochastic) &&
                  pool_fast_records_selection(g, p)))) {
    if (dx) scatter_to_argmax(g, n, x, dy, argmax, dx);
    return;
  }
  if (dx && pool_fast_covers(g, p, dlambda != nullptr))
    return pool_backward_fast(g, p, rng, n, x, y, dy, dx);
  std::vector<float> own;
  dispatch<Backward>(p.method, g, p, rng, n, x, y, dy, dx, dlambda,
                     scratch_for(g, n, scratch, scratch_threads, own));
}

}  // namespace convpool::cpu
