// What bf16 convolutions could buy on this CPU: oneDNN's forward, backward-data and
// backward-weights primitives at ResNet-20's three stage shapes (and its stem), batch 128, in
// fp32 and in bf16 (fp32 weight gradients), each in oneDNN's preferred layouts, plus the
// reorders that converting fp32 NCHW activations to bf16 and back at a convolution's
// boundary would add. An experiment for the mixed-precision design, not part of the engine:
// bench/onednn-bf16-probe builds and runs it.
#include <dnnl.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename Fn>
double time_ms(stream& s, Fn&& fn) {
  for (int i = 0; i < 3; ++i) fn();
  s.wait();
  const int reps = 20;
  const double t0 = now();
  for (int i = 0; i < reps; ++i) fn();
  s.wait();
  return (now() - t0) / reps * 1e3;
}

struct Times {
  double fwd, bwd_data, bwd_weights;
  const char* impl;
};

Times convolution(engine& eng, stream& s, int n, int c, int hw, int k, dt t) {
  const memory::dims src = {n, c, hw, hw}, wei = {k, c, 3, 3}, dst = {n, k, hw, hw};
  const memory::dims one = {1, 1};
  const auto md_s = memory::desc(src, t, tag::any), md_w = memory::desc(wei, t, tag::any),
             md_d = memory::desc(dst, t, tag::any), md_gw = memory::desc(wei, dt::f32, tag::any);
  convolution_forward::primitive_desc f(
      {prop_kind::forward_training, algorithm::convolution_direct, md_s, md_w, md_d, one, one, one},
      eng);
  convolution_backward_data::primitive_desc bd(
      {algorithm::convolution_direct, md_s, md_w, md_d, one, one, one}, eng, f);
  convolution_backward_weights::primitive_desc bw(
      {algorithm::convolution_direct, md_s, md_gw, md_d, one, one, one}, eng, f);
  memory ms(f.src_desc(), eng), mw(f.weights_desc(), eng), md(f.dst_desc(), eng),
      mds(bd.diff_src_desc(), eng), mdd(bd.diff_dst_desc(), eng), mdw(bw.diff_weights_desc(), eng);
  for (memory* m : {&ms, &mw, &mdd})
    std::memset(m->get_data_handle(), 0, m->get_desc().get_size());
  convolution_forward fp(f);
  convolution_backward_data bdp(bd);
  convolution_backward_weights bwp(bw);
  Times r{};
  r.fwd = time_ms(s, [&] {
    fp.execute(s, {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}});
  });
  r.bwd_data = time_ms(s, [&] {
    bdp.execute(s, {{DNNL_ARG_DIFF_DST, mdd}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, mds}});
  });
  r.bwd_weights = time_ms(s, [&] {
    bwp.execute(s, {{DNNL_ARG_SRC, ms}, {DNNL_ARG_DIFF_DST, mdd}, {DNNL_ARG_DIFF_WEIGHTS, mdw}});
  });
  r.impl = f.impl_info_str();
  return r;
}

// fp32 NCHW to bf16 in the forward primitive's layout for `src`, and back.
double boundary_reorders(engine& eng, stream& s, int n, int c, int hw) {
  const memory::dims dims = {n, c, hw, hw};
  memory f32(memory::desc(dims, dt::f32, tag::nchw), eng);
  memory bf16(memory::desc(dims, dt::bf16, c % 16 ? tag::nhwc : tag::nChw16c), eng);
  std::memset(f32.get_data_handle(), 0, f32.get_desc().get_size());
  reorder to(f32, bf16), back(bf16, f32);
  return time_ms(s, [&] { to.execute(s, f32, bf16); }) + time_ms(s, [&] { back.execute(s, bf16, f32); });
}

}  // namespace

int main() {
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  struct Shape {
    int n, c, hw, k;
  };
  const Shape shapes[] = {{128, 3, 32, 16}, {128, 16, 32, 16}, {128, 32, 16, 32}, {128, 64, 8, 64}};
  std::printf("3x3 convolutions, stride 1, same padding; ms per call (the mean of 20 after 3)\n");
  std::printf("%-16s %-28s %8s %8s %8s   %-28s %8s %8s %8s  %s\n", "input -> k", "fp32 impl", "fwd",
              "bwd-d", "bwd-w", "bf16 impl", "fwd", "bwd-d", "bwd-w", "fp32/bf16 all; +reorders");
  for (const Shape& sh : shapes) {
    const Times a = convolution(eng, s, sh.n, sh.c, sh.hw, sh.k, dt::f32);
    const Times b = convolution(eng, s, sh.n, sh.c, sh.hw, sh.k, dt::bf16);
    // At a boundary: the input there and back (forward's src, backward's diff_src) and the
    // output likewise (dst, diff_dst).
    const double reorders = boundary_reorders(eng, s, sh.n, sh.c, sh.hw) +
                            boundary_reorders(eng, s, sh.n, sh.k, sh.hw);
    const double fa = a.fwd + a.bwd_data + a.bwd_weights, fb = b.fwd + b.bwd_data + b.bwd_weights;
    char name[32];
    std::snprintf(name, sizeof name, "%dx%dx%d->%d", sh.n, sh.c, sh.hw, sh.k);
    std::printf("%-16s %-28s %8.2f %8.2f %8.2f   %-28s %8.2f %8.2f %8.2f  %5.2fx; %5.2fx\n", name,
                a.impl, a.fwd, a.bwd_data, a.bwd_weights, b.impl, b.fwd, b.bwd_data,
                b.bwd_weights, fa / fb, fa / (fb + reorders));
  }
}
