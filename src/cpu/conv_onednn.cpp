#include "conv_onednn.h"

#include "convpool/error.h"
#include "convpool/precision.h"

#ifdef CONVPOOL_HAVE_ONEDNN
#include <dnnl.hpp>

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "kernels/activation_math.cuh"
#endif

namespace convpool::cpu {

#ifndef CONVPOOL_HAVE_ONEDNN

struct OnednnConv::Impl {};
std::unique_ptr<OnednnConv> OnednnConv::create(const ConvGeom&, int, bool, bool, OnednnAlgo, bool) {
  return nullptr;
}
OnednnConv::OnednnConv(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnConv::~OnednnConv() = default;
size_t OnednnConv::workspace_floats() const { return 0; }
void OnednnConv::forward(int, const float*, const float*, const float*, float*, float*) {
  CP_FAIL("this build has no oneDNN");
}
void OnednnConv::backward_filter(int, const float*, const float*, float*, float*, float*,
                                 const float*) {
  CP_FAIL("this build has no oneDNN");
}
void OnednnConv::backward_data(int, const float*, float*, float*) {
  CP_FAIL("this build has no oneDNN");
}
std::string OnednnConv::implementation(int) { return "no oneDNN"; }

}  // namespace convpool::cpu
namespace convpool {
bool cpu_has_bf16() { return false; }
}  // namespace convpool
namespace convpool::cpu {

#else

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Args = std::unordered_map<int, memory>;

// oneDNN's errors become convpool::Error with the call's file:line.
#define CP_DNNL(...)                                       \
  do {                                                     \
    try {                                                  \
      __VA_ARGS__;                                         \
    } catch (const dnnl::error& cp_e_) {                   \
      CP_FAIL("oneDNN: " << cp_e_.what() << " in " #__VA_ARGS__); \
    }                                                      \
  } while (0)

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}
dnnl::stream& cpu_stream() {
  static dnnl::stream stream(cpu_engine());
  return stream;
}

constexpr size_t kAlignFloats = 16;  // 64-byte alignment of every buffer carved from ws
size_t align_up(size_t floats) { return (floats + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }
size_t floats_of(const memory::desc& d) { return align_up((d.get_size() + 3) / 4); }

// A tensor as the caller holds it (NCHW, OIHW) and, when the primitive wants another layout,
// its blocked copy in ws with the reorder between them.
struct Staged {
  memory user;     // points at the caller's buffer (set per call)
  memory blocked;  // == user when the primitive takes the plain layout
  size_t ws_offset = 0;
  dnnl::reorder to_blocked, to_user;  // made only in the directions used
  Args to_blocked_args, to_user_args;
  bool reordered() const { return blocked != user; }
};

}  // namespace

// The primitives of one batch size, with their arguments bound once (a fresh argument map per
// call would allocate in every step).
struct BatchPrimitives {
  int n = 0;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  std::string implementation;
  // forward
  Staged fx, fw, fy;
  memory fbias;
  Args fwd_args;
  // backward filter: x, dy (masked when a ReLU is fused) -> dw, db
  Staged wx, wdy, wdw;
  memory wdb;
  Args bwd_weights_args;
  // backward data: dy (the filter direction's blocked copy when the layouts agree), w -> dx
  Staged bdy, bw, bdx;
  bool bdy_shares_wdy = false;
  Args bwd_data_args;
  memory scratchpad;
  size_t scratch_offset = 0, masked_dy_offset = 0, ws_floats = 0;
  bool user_scratchpad = true;  // false: oneDNN's own scratchpad (see OnednnConv::Impl::batch)
};

struct OnednnConv::Impl {
  ConvGeom g;
  int max_batch;
  bool bias, relu;
  bool bf16 = false;  // x, w, y and dy in bf16 inside the primitives; dw, db and the bias fp32
  dnnl::algorithm algo;
  std::vector<std::unique_ptr<BatchPrimitives>> batches;
  size_t ws_floats = 0;
  BatchPrimitives* last = nullptr;  // the set backward_filter used, for backward_data

  memory::dims src_dims(int n) const { return {n, g.C, g.H, g.W}; }
  memory::dims dst_dims(int n) const { return {n, g.OC, g.OH, g.OW}; }
  memory::dims wei_dims() const { return {g.OC, g.C, g.KH, g.KW}; }
  memory::dims strides() const { return {g.SH, g.SW}; }
  memory::dims pad_l() const { return {g.PH, g.PW}; }
  // The right padding that gives exactly OH x OW (none beyond what the output needs).
  memory::dims pad_r() const {
    return {std::max(0, (g.OH - 1) * g.SH + g.KH - g.H - g.PH),
            std::max(0, (g.OW - 1) * g.SW + g.KW - g.W - g.PW)};
  }

  // Offsets into ws and its base are kept 64-byte aligned: oneDNN's AVX-512 kernels store to
  // their blocked tensors and scratch with non-temporal stores (vmovntps), which fault on a
  // lesser alignment (seen with its Winograd backward-weights kernel on an AVX-512 Xeon).
  static constexpr size_t kAlignFloats = 16;
  static size_t aligned(size_t offset) { return (offset + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }
  static float* aligned(float* ws) {
    const auto bytes = kAlignFloats * sizeof(float);
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(ws) + bytes - 1) / bytes * bytes);
  }

  // Carves the blocked copy of `user` (if the primitive wants one) from the workspace.
  Staged stage(const memory::desc& user_desc, const memory::desc& want, size_t& offset,
               bool into, bool back) {
    Staged s;
    s.user = memory(user_desc, cpu_engine(), DNNL_MEMORY_NONE);
    if (want == user_desc) {
      s.blocked = s.user;
      return s;
    }
    s.blocked = memory(want, cpu_engine(), DNNL_MEMORY_NONE);
    offset = aligned(offset);
    s.ws_offset = offset;
    offset += floats_of(want);
    if (into) {
      s.to_blocked = dnnl::reorder(s.user, s.blocked);
      s.to_blocked_args = {{DNNL_ARG_FROM, s.user}, {DNNL_ARG_TO, s.blocked}};
    }
    if (back) {
      s.to_user = dnnl::reorder(s.blocked, s.user);
      s.to_user_args = {{DNNL_ARG_FROM, s.blocked}, {DNNL_ARG_TO, s.user}};
    }
    return s;
  }

  // user_scratchpad: oneDNN's scratch in ws (no allocation in a step); otherwise oneDNN keeps
  // its own, for a batch whose kernels want more scratch than ws holds (see batch()).
  std::unique_ptr<BatchPrimitives> make(int n, bool user_scratchpad) {
    auto p = std::make_unique<BatchPrimitives>();
    p->n = n;
    p->user_scratchpad = user_scratchpad;
    const auto mode = user_scratchpad ? dnnl::scratchpad_mode::user : dnnl::scratchpad_mode::library;
    const auto f32 = memory::data_type::f32;
    // In bf16 the staging reorders convert (to nearest even) as they reblock.
    const auto inner = bf16 ? memory::data_type::bf16 : f32;
    const memory::desc x_any(src_dims(n), inner, Tag::any), y_any(dst_dims(n), inner, Tag::any),
        w_any(wei_dims(), inner, Tag::any), dw_any(wei_dims(), f32, Tag::any),
        b_desc({g.OC}, f32, Tag::x);
    const memory::desc x_user(src_dims(n), f32, Tag::nchw), y_user(dst_dims(n), f32, Tag::nchw),
        w_user(wei_dims(), f32, Tag::oihw);
    // Attributes are handles: the forward's (with its ReLU) is a separate object.
    dnnl::primitive_attr attr, fwd_attr;
    attr.set_scratchpad_mode(mode);
    fwd_attr.set_scratchpad_mode(mode);
    if (relu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      fwd_attr.set_post_ops(ops);
    }
    using Fwd = dnnl::convolution_forward;
    using BwdData = dnnl::convolution_backward_data;
    using BwdW = dnnl::convolution_backward_weights;
    const auto fd = bias ? Fwd::desc(dnnl::prop_kind::forward_training, algo, x_any, w_any, b_desc,
                                     y_any, strides(), pad_l(), pad_r())
                         : Fwd::desc(dnnl::prop_kind::forward_training, algo, x_any, w_any,
                                     y_any, strides(), pad_l(), pad_r());
    const Fwd::primitive_desc fpd(fd, fwd_attr, cpu_engine());
    const BwdData::primitive_desc dpd(
        BwdData::desc(algo, x_any, w_any, y_any, strides(), pad_l(), pad_r()), attr, cpu_engine(),
        fpd);
    const auto wd =
        bias ? BwdW::desc(algo, x_any, dw_any, b_desc, y_any, strides(), pad_l(), pad_r())
             : BwdW::desc(algo, x_any, dw_any, y_any, strides(), pad_l(), pad_r());
    const BwdW::primitive_desc wpd(wd, attr, cpu_engine(), fpd);
    p->fwd = Fwd(fpd);
    p->bwd_data = BwdData(dpd);
    p->bwd_weights = BwdW(wpd);
    p->implementation = std::string(bf16 ? "bf16: " : "") + "fwd " + fpd.impl_info_str() +
                        ", bwd-data " + dpd.impl_info_str() + ", bwd-filter " + wpd.impl_info_str();

    size_t off = 0;
    if (relu) {  // dy masked by the ReLU, NCHW, before any reorder
      p->masked_dy_offset = off;
      off += floats_of(y_user);
    }
    p->fx = stage(x_user, fpd.src_desc(), off, true, false);
    p->fw = stage(w_user, fpd.weights_desc(), off, true, false);
    p->fy = stage(y_user, fpd.dst_desc(), off, false, true);
    p->wx = stage(x_user, wpd.src_desc(), off, true, false);
    p->wdy = stage(y_user, wpd.diff_dst_desc(), off, true, false);
    p->wdw = stage(w_user, wpd.diff_weights_desc(), off, false, true);
    p->bdy_shares_wdy = dpd.diff_dst_desc() == wpd.diff_dst_desc();
    if (p->bdy_shares_wdy) {
      p->bdy = p->wdy;
    } else {
      p->bdy = stage(y_user, dpd.diff_dst_desc(), off, true, false);
    }
    p->bw = stage(w_user, dpd.weights_desc(), off, true, false);
    p->bdx = stage(x_user, dpd.diff_src_desc(), off, false, true);
    const memory::desc scratch = std::max(
        {fpd.scratchpad_desc(), dpd.scratchpad_desc(), wpd.scratchpad_desc()},
        [](const memory::desc& a, const memory::desc& b) { return a.get_size() < b.get_size(); });
    off = aligned(off);
    p->scratch_offset = off;
    if (user_scratchpad) off += floats_of(scratch);
    p->ws_floats = off + kAlignFloats - 1;  // room to align an unaligned base (aligned(ws))
    p->fwd_args = {{DNNL_ARG_SRC, p->fx.blocked},
                   {DNNL_ARG_WEIGHTS, p->fw.blocked},
                   {DNNL_ARG_DST, p->fy.blocked}};
    p->bwd_weights_args = {{DNNL_ARG_SRC, p->wx.blocked},
                           {DNNL_ARG_DIFF_DST, p->wdy.blocked},
                           {DNNL_ARG_DIFF_WEIGHTS, p->wdw.blocked}};
    if (bias) {
      p->fbias = memory(b_desc, cpu_engine(), DNNL_MEMORY_NONE);
      p->wdb = memory(b_desc, cpu_engine(), DNNL_MEMORY_NONE);
      p->fwd_args[DNNL_ARG_BIAS] = p->fbias;
      p->bwd_weights_args[DNNL_ARG_DIFF_BIAS] = p->wdb;
    }
    p->bwd_data_args = {{DNNL_ARG_DIFF_DST, p->bdy.blocked},
                        {DNNL_ARG_WEIGHTS, p->bw.blocked},
                        {DNNL_ARG_DIFF_SRC, p->bdx.blocked}};
    if (user_scratchpad) {
      p->scratchpad = memory(scratch, cpu_engine(), DNNL_MEMORY_NONE);
      for (Args* args : {&p->fwd_args, &p->bwd_weights_args, &p->bwd_data_args})
        (*args)[DNNL_ARG_SCRATCHPAD] = p->scratchpad;
    }
    return p;
  }

  BatchPrimitives& batch(int n) {
    CP_CHECK(n >= 1 && n <= max_batch, "batch " << n << " outside 1.." << max_batch);
    for (auto& p : batches)
      if (p->n == n) return *p;
    // A smaller batch's kernels may want more scratch than the largest batch's (Winograd's
    // blocking depends on n): that batch keeps oneDNN's own scratchpad instead, which oneDNN
    // allocates, rather than failing. The blocked tensors grow with n, so they always fit.
    std::unique_ptr<BatchPrimitives> p;
    CP_DNNL(p = make(n, true));
    if (p->ws_floats > ws_floats) CP_DNNL(p = make(n, false));
    CP_CHECK(p->ws_floats <= ws_floats,
             "oneDNN wants " << p->ws_floats << " floats of scratch at batch " << n << ", "
                             << ws_floats << " planned");
    batches.push_back(std::move(p));
    return *batches.back();
  }

  // Points the staged tensor at the caller's buffer and its blocked copy into ws.
  static void bind(Staged& s, const float* user, float* ws) {
    s.user.set_data_handle(const_cast<float*>(user));
    if (s.reordered()) s.blocked.set_data_handle(ws + s.ws_offset);
  }
  static void into_blocked(Staged& s) {
    if (s.reordered()) s.to_blocked.execute(cpu_stream(), s.to_blocked_args);
  }
  static void back_to_user(Staged& s) {
    if (s.reordered()) s.to_user.execute(cpu_stream(), s.to_user_args);
  }
};

OnednnConv::OnednnConv(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnConv::~OnednnConv() = default;

}  // namespace convpool::cpu
namespace convpool {
bool cpu_has_bf16() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}
}  // namespace convpool
namespace convpool::cpu {

std::unique_ptr<OnednnConv> OnednnConv::create(const ConvGeom& g, int max_batch, bool bias,
                                               bool relu, OnednnAlgo algo, bool bf16) {
  auto impl = std::make_unique<Impl>();
  impl->bf16 = bf16;
  impl->g = g;
  impl->max_batch = max_batch;
  impl->bias = bias;
  impl->relu = relu;
  impl->algo = algo == OnednnAlgo::automatic ? dnnl::algorithm::convolution_auto
                                             : dnnl::algorithm::convolution_direct;
  try {
    auto p = impl->make(max_batch, true);
    // oneDNN's reference kernels ("ref:any") are far slower than im2col: not an engine.
    if (p->implementation.find("ref") != std::string::npos) return nullptr;
    impl->ws_floats = p->ws_floats;
    impl->batches.push_back(std::move(p));
  } catch (const dnnl::error&) {
    return nullptr;  // no implementation for this shape here
  }
  return std::unique_ptr<OnednnConv>(new OnednnConv(std::move(impl)));
}

size_t OnednnConv::workspace_floats() const { return impl_->ws_floats; }

std::string OnednnConv::implementation(int n) { return impl_->batch(n).implementation; }

void OnednnConv::forward(int n, const float* x, const float* w, const float* b, float* y,
                         float* ws) {
  ws = Impl::aligned(ws);
  BatchPrimitives& p = impl_->batch(n);
  CP_DNNL({
    Impl::bind(p.fx, x, ws);
    Impl::bind(p.fw, w, ws);
    Impl::bind(p.fy, y, ws);
    if (p.user_scratchpad) p.scratchpad.set_data_handle(ws + p.scratch_offset);
    if (impl_->bias) p.fbias.set_data_handle(const_cast<float*>(b));
    Impl::into_blocked(p.fx);
    Impl::into_blocked(p.fw);
    p.fwd.execute(cpu_stream(), p.fwd_args);
    Impl::back_to_user(p.fy);
    cpu_stream().wait();
  });
}

void OnednnConv::backward_filter(int n, const float* x, const float* dy, float* dw, float* db,
                                 float* ws, const float* relu_y) {
  ws = Impl::aligned(ws);
  BatchPrimitives& p = impl_->batch(n);
  if (impl_->relu) {
    CP_CHECK(relu_y, "a fused ReLU needs the forward's output");
    float* masked = ws + p.masked_dy_offset;
    const size_t count = size_t(n) * impl_->g.OC * impl_->g.P();
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < count; ++i) masked[i] = relu_backward(relu_y[i], dy[i]);
    dy = masked;
  }
  CP_DNNL({
    Impl::bind(p.wx, x, ws);
    Impl::bind(p.wdy, dy, ws);
    Impl::bind(p.wdw, dw, ws);
    if (p.user_scratchpad) p.scratchpad.set_data_handle(ws + p.scratch_offset);
    if (impl_->bias) p.wdb.set_data_handle(db);
    Impl::into_blocked(p.wx);
    Impl::into_blocked(p.wdy);
    p.bwd_weights.execute(cpu_stream(), p.bwd_weights_args);
    Impl::back_to_user(p.wdw);
    if (!p.bdy_shares_wdy) Impl::bind(p.bdy, dy, ws);
    cpu_stream().wait();
  });
  impl_->last = &p;
}

void OnednnConv::backward_data(int n, const float* w, float* dx, float* ws) {
  ws = Impl::aligned(ws);
  BatchPrimitives& p = impl_->batch(n);
  CP_CHECK(impl_->last == &p, "backward_data must follow backward_filter on the same batch");
  CP_DNNL({
    Impl::bind(p.bw, w, ws);
    Impl::bind(p.bdx, dx, ws);
    if (p.user_scratchpad) p.scratchpad.set_data_handle(ws + p.scratch_offset);
    if (!p.bdy_shares_wdy) Impl::into_blocked(p.bdy);
    Impl::into_blocked(p.bw);
    p.bwd_data.execute(cpu_stream(), p.bwd_data_args);
    Impl::back_to_user(p.bdx);
    cpu_stream().wait();
  });
}

#endif  // CONVPOOL_HAVE_ONEDNN

}  // namespace convpool::cpu
