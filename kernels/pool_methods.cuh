// The pooling methods: one row each, the only place a method's name, parameters, ranges and
// defaults are written. Everything else is generated from these rows or reads them: the
// PoolMethod enum (kernels, CPU), the model-file and --pool parser, `convpool pool-methods`
// (and its --json, which scripts read), the study's default list, the ONNX planner, the
// PyTorch extension's `methods()`, and the test lists. A method's arithmetic lives in
// pool_math.cuh (pool_window_forward / pool_window_backward), its fast paths in
// src/cpu/pool_fast*.cpp; tests/test_pool_methods.cpp fails for a row that lacks any of them.
//
// CONVPOOL_POOL_METHODS(M, P) calls, for each method,
//   M(id, python_class, onnx_form, study, inputs, definition, params...)
// - id: the name in model files and on the command line, and the enum value PoolMethod::id;
// - python_class: its nn.Module in convpool_torch;
// - onnx_form: native (standard ONNX pooling operators), patches (built from explicit window
//   patches: one Slice per window offset where windows overlap) or refused (no ONNX form);
// - study: what `convpool study` runs by default for it ("" for nothing), separated by
//   spaces (a run's own parameters are separated by commas: "tmaxavg:k=2,t=0.5");
// - inputs: any, or nonneg (defined for inputs >= 0 only);
// - params: P(key, kind, default, lo, hi) for each of the method's own parameters, kind
//   integer, real or flag (0|1); the key is also the slot the layer stores it in.
// Append new methods at the end: the enum's values are stored in checkpoints of the
// PyTorch extension's users and in benchmark files.
#pragma once

namespace convpool {

constexpr int kPoolMaxTopK = 64;

#define CONVPOOL_POOL_METHODS(M, P)                                                            \
  M(max, "MaxPool", native, "max", any,                                                        \
    "max over the window; gradient to the first argmax; NaN propagates")                      \
  M(avg, "AvgPool", native, "avg", any, "mean over the window, padding counted or not",       \
    P(include_pad, flag, 1, 0, 1))                                                             \
  M(min, "MinPool", native, "", any, "min over the window; gradient to the first argmin")     \
  M(lp, "LpPool", native, "lp:p=3", any, "(sum |x|^p)^(1/p); 0 at all-zero windows",          \
    P(p, real, 2, 1e-3, 1e3))                                                                  \
  M(mixed, "MixedPool", native, "mixed", any,                                                  \
    "lambda*max + (1-lambda)*avg; lambda in {0,1} per layer per step in training, 0.5 in "    \
    "eval; learned=1: lambda = sigmoid(a), a trained",                                         \
    P(learned, flag, 0, 0, 1))                                                                 \
  M(stochastic, "StochasticPool", native, "stochastic", nonneg,                                \
    "training: sample x_i with probability x_i/sum(x); eval: sum p_i x_i (inputs >= 0)")       \
  M(avgtopk, "AvgTopK", patches, "avgtopk:k=2 avgtopk:k=3", any,                               \
    "mean of the k largest values", P(k, integer, 2, 1, ::convpool::kPoolMaxTopK))                         \
  M(tmaxavg, "TMaxAvg", patches, "", any, "max if max >= t, else the mean of the k largest",  \
    P(k, integer, 2, 1, ::convpool::kPoolMaxTopK), P(t, real, 0, -1e30, 1e30))                             \
  M(softpool, "SoftPool", patches, "softpool", any, "sum softmax(x)_i * x_i, computed stably") \
  M(rwp, "RankWeightedPool", patches, "rwp", any,                                              \
    "rank-weighted: sum_r w_r x_(r) / sum_r w_r, w_r = a (1-a)^(r-1), x_(r) the r-th " \
    "largest (at most 64 elements a window)",                                                  \
    P(a, real, 0.5, 1e-3, 1))                                                              \
  M(rsp, "RankStochasticPool", patches, "rsp", any,                                            \
    "training: x_(r) drawn with probability w_r / sum w (rwp's weights; a NaN is drawn "       \
    "surely); eval: rwp (at most 64 elements a window)",                                       \
    P(a, real, 0.5, 1e-3, 1))

#define CONVPOOL_POOL_ENUM_ROW(id, ...) id,
enum class PoolMethod : int { CONVPOOL_POOL_METHODS(CONVPOOL_POOL_ENUM_ROW, ) };
#undef CONVPOOL_POOL_ENUM_ROW

#define CONVPOOL_POOL_COUNT_ROW(...) +1
constexpr int kPoolMethodCount = 0 CONVPOOL_POOL_METHODS(CONVPOOL_POOL_COUNT_ROW, );
#undef CONVPOOL_POOL_COUNT_ROW

// Where the layer keeps a method parameter: one slot per parameter key in the table.
enum class PoolParamSlot : int { k, p, t, include_pad, learned, a };
constexpr int kPoolParamSlots = 6;

// Rank-weighted methods (rwp, rsp) weigh every rank of the window: at most this many elements.
constexpr int kPoolMaxRanked = kPoolMaxTopK;

// Other names of a method, under which a paper introduced it: A(alias, method, alias_key,
// method_key, source). `pool rap t=3` is `pool avgtopk k=3`: Shi, Ye and Wu's rank-based
// average pooling averages the t largest activations of the window, which is Avg-TopK.
#define CONVPOOL_POOL_ALIASES(A)                                                               \
  A(rap, avgtopk, t, k, "rank-based average pooling (Shi, Ye and Wu, Neural Networks 2016)")

}  // namespace convpool
