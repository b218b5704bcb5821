"""convpool's pooling methods for PyTorch.

Every method is a torch.autograd.Function (``PoolFunction``, through ``pool2d``) and an
nn.Module. CPU tensors run convpool's own CPU code (src/cpu/pool.cpp, src/cpu/pool_fast.cpp
and the per-window math of kernels/pool_math.cuh); CUDA tensors run convpool's CUDA kernels
(kernels/pool_small.cu, kernels/pool_warp.cu) when the extension was built with CUDA.

Build first: ``scripts/build-torch-ext`` (see README, "Use from PyTorch").

    import convpool_torch as cpt
    pool = cpt.AvgTopK(k=3, kernel_size=3, stride=3)
    y = pool(x)                       # x: N x C x H x W, float32 or float64

The kernels compute in float32: float64 inputs are converted on the way in and the results
(output and gradients) converted back, so float64 gives float32 accuracy.
"""
import json
import numbers

import torch
from torch import nn

try:
    from . import _C
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError(
        "convpool_torch: the compiled extension is missing; build it with scripts/build-torch-ext "
        f"({e})") from e


def methods():
    """The engine's method table (kernels/pool_methods.cuh), from the extension: one dict per
    method with its name, id, python_class, parameters (key, kind, default, min, max),
    ONNX form and definition."""
    return json.loads(_C.methods_json())


# Method name -> id, as in the engine's table.
METHODS = {m["name"]: m["id"] for m in methods()}
MAX_TOPK = _C.max_topk()
# rwp's and rsp's a: the table's range.
_RANK_A_RANGE = next((p["min"], p["max"]) for m in methods() if m["name"] == "rwp"
                     for p in m["params"] if p["key"] == "a")
_NONE = torch.empty(0)


def built_with_cuda():
    """True when this build runs CUDA tensors on convpool's CUDA kernels."""
    return _C.built_with_cuda()


def _pair(value, name, minimum):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (not isinstance(value, (tuple, list)) or len(value) != 2 or
            not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"convpool_torch: {name} must be an int or a pair of ints, got {value!r}")
    if min(value) < minimum:
        raise ValueError(f"convpool_torch: {name} must be >= {minimum}, got {tuple(value)}")
    return int(value[0]), int(value[1])


def _check_input(x):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"convpool_torch: expected a tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"convpool_torch: expected a 4-D input (N, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"convpool_torch: expected float32 or float64, got {x.dtype}")
    if x.device.type == "cuda" and not built_with_cuda():
        raise RuntimeError("convpool_torch: this build has no CUDA kernels "
                           "(scripts/build-torch-ext --cuda)")
    if x.device.type not in ("cpu", "cuda"):
        raise RuntimeError(f"convpool_torch: unsupported device {x.device}")
    if x.numel() == 0:
        raise ValueError(f"convpool_torch: empty input of shape {tuple(x.shape)}")


class PoolFunction(torch.autograd.Function):
    """apply(x, alpha, cfg): alpha is the learned-mixed parameter (or None); cfg the tuple
    (method, kh, kw, sh, sw, ph, pw, include_pad, k, p, t, a, training, seed, layer, step)."""

    @staticmethod
    def forward(ctx, x, alpha, cfg):
        xf = x.detach().to(torch.float32).contiguous()
        af = _NONE if alpha is None else alpha.detach().to(torch.float32).reshape(1).contiguous()
        if x.is_cuda and alpha is not None:
            af = af.to(x.device)
        y, ranked = _C.forward(xf, *cfg, af)
        ctx.save_for_backward(xf, y, af, ranked)
        ctx.cfg, ctx.dtype = cfg, x.dtype
        ctx.alpha_like = None if alpha is None else (alpha.shape, alpha.dtype)
        return y.to(x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        xf, y, af, ranked = ctx.saved_tensors
        if ranked is None:
            ranked = _NONE
        dx, dalpha = _C.backward(xf, y, gy.to(torch.float32).contiguous(), *ctx.cfg, af, ranked)
        gx = dx.to(ctx.dtype) if ctx.needs_input_grad[0] else None
        ga = None
        if ctx.alpha_like is not None and ctx.needs_input_grad[1] and dalpha is not None:
            shape, dtype = ctx.alpha_like
            ga = dalpha.to(dtype).reshape(shape)
        return gx, ga, None


def pool2d(x, method, kernel_size=2, stride=None, padding=0, *, global_pool=False, k=2, p=2.0,
           t=0.0, a=0.5, include_pad=True, training=False, seed=0, step=0, layer=0, alpha=None):
    """Pools x (N, C, H, W) with one of METHODS.

    kernel_size/stride/padding: int or pair (stride defaults to kernel_size; padding at most
    half the window). global_pool: one window over the whole plane. k: avgtopk and tmaxavg
    (1..64, at most the window). p: lp (> 0). t: tmaxavg's threshold. a: rwp's and rsp's rank
    weight a (1 - a)^(r-1), in (0, 1] (windows of at most 64 elements). include_pad: avg's
    divisor. training: stochastic samples, rsp draws a rank and mixed draws lambda in {0, 1}
    from (seed, layer, step); in evaluation stochastic is the expectation, rsp is rwp and mixed
    uses lambda 0.5. alpha: mixed with a learned lambda = sigmoid(alpha) (a 1-element tensor,
    differentiable).
    """
    _check_input(x)
    if method not in METHODS:
        raise ValueError(f"convpool_torch: unknown method {method!r}; one of {sorted(METHODS)}")
    H, W = x.shape[2], x.shape[3]
    if global_pool:
        kh, kw, sh, sw, ph, pw = H, W, H, W, 0, 0
    else:
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        sh, sw = _pair(kernel_size if stride is None else stride, "stride", 1)
        ph, pw = _pair(padding, "padding", 0)
        if ph > kh // 2 or pw > kw // 2:
            raise ValueError(f"convpool_torch: padding {(ph, pw)} must be at most half the "
                             f"window {(kh, kw)}")
        if kh > H + 2 * ph or kw > W + 2 * pw:
            raise ValueError(f"convpool_torch: window {kh}x{kw} is larger than the padded input "
                             f"{H + 2 * ph}x{W + 2 * pw}")
    if method in ("avgtopk", "tmaxavg"):
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or not 1 <= k <= MAX_TOPK:
            raise ValueError(f"convpool_torch: k must be an int in 1..{MAX_TOPK}, got {k!r}")
        if k > kh * kw:
            raise ValueError(f"convpool_torch: k={k} is larger than the window ({kh * kw} "
                             "elements)")
    if method in ("rwp", "rsp"):
        lo, hi = _RANK_A_RANGE
        if isinstance(a, bool) or not (isinstance(a, numbers.Real) and lo <= a <= hi):
            raise ValueError(f"convpool_torch: a must be a number in [{lo}, {hi}], got {a!r}")
        if kh * kw > MAX_TOPK:
            raise ValueError(f"convpool_torch: {method} weighs every rank of its window: at most "
                             f"{MAX_TOPK} elements, not {kh}x{kw}")
    if method == "lp" and not (isinstance(p, numbers.Real) and 0 < p < float("inf")):
        raise ValueError(f"convpool_torch: p must be a finite number > 0, got {p!r}")
    if alpha is not None:
        if method != "mixed":
            raise ValueError("convpool_torch: alpha (learned lambda) is for method 'mixed' only")
        if not isinstance(alpha, torch.Tensor) or alpha.numel() != 1:
            raise ValueError("convpool_torch: alpha must be a 1-element tensor")
    cfg = (METHODS[method], kh, kw, sh, sw, ph, pw, bool(include_pad), int(k), float(p),
           float(t), float(a), bool(training), int(seed), int(layer), int(step))
    return PoolFunction.apply(x, alpha, cfg)


class InterMapFunction(torch.autograd.Function):
    """apply(x, groups, mode): inter-map pooling on convpool's kernels."""

    @staticmethod
    def forward(ctx, x, groups, mode):
        xf = x.detach().to(torch.float32).contiguous()
        ctx.save_for_backward(xf)
        ctx.groups, ctx.mode, ctx.dtype = groups, mode, x.dtype
        return _C.intermap_forward(xf, groups, mode).to(x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        (xf,) = ctx.saved_tensors
        dx = _C.intermap_backward(xf, gy.to(torch.float32).contiguous(), ctx.groups, ctx.mode)
        return dx.to(ctx.dtype), None, None


def intermap_pool2d(x, groups, mode="max"):
    """Pools x (N, C, H, W) across maps: C maps in groups of `groups` adjacent ones, reduced at
    every position by max (maxout's form: the first largest, NaN propagates) or mean; returns
    (N, C / groups, H, W). The engine's `intermap_pool` op."""
    _check_input(x)
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"convpool_torch: groups must be an int >= 1, got {groups!r}")
    if x.shape[1] % groups:
        raise ValueError(f"convpool_torch: groups={groups} does not divide the input's "
                         f"{x.shape[1]} maps")
    if mode not in ("max", "mean"):
        raise ValueError(f"convpool_torch: mode must be 'max' or 'mean', got {mode!r}")
    return InterMapFunction.apply(x, int(groups), 0 if mode == "max" else 1)


class InterMapPool(nn.Module):
    """Inter-map pooling (intermap_pool2d) as a module."""

    def __init__(self, groups, mode="max"):
        super().__init__()
        if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
            raise ValueError(f"convpool_torch: groups must be an int >= 1, got {groups!r}")
        if mode not in ("max", "mean"):
            raise ValueError(f"convpool_torch: mode must be 'max' or 'mean', got {mode!r}")
        self.groups, self.mode = int(groups), mode

    def forward(self, x):
        return intermap_pool2d(x, self.groups, self.mode)

    def extra_repr(self):
        return f"groups={self.groups}, mode={self.mode}"


class PyramidPool(nn.Module):
    """Per-pixel pyramid pooling (4P; the engine's pyramid_pool op): convpool's max pooling at
    stride 1 and padding size // 2 for each odd size in `sizes` (1..7), concatenated along
    channels: C maps become C * len(sizes), height and width kept."""

    def __init__(self, sizes):
        super().__init__()
        sizes = list(sizes) if isinstance(sizes, (list, tuple)) else None
        if (not sizes or len(set(sizes)) != len(sizes) or
                not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and
                        1 <= s <= 7 and s % 2 for s in sizes)):
            raise ValueError(f"convpool_torch: sizes must be distinct odd ints in 1..7, got "
                             f"{sizes!r}")
        self.sizes = [int(s) for s in sizes]

    def forward(self, x):
        return torch.cat([pool2d(x, "max", s, 1, s // 2, training=self.training)
                          for s in self.sizes], dim=1)

    def extra_repr(self):
        return f"sizes={self.sizes}"


class WeightedPoolFunction(torch.autograd.Function):
    """apply(x, weight, size, stride, padding): weighted pooling on convpool's kernels."""

    @staticmethod
    def forward(ctx, x, weight, size, stride, padding):
        xf = x.detach().to(torch.float32).contiguous()
        wf = weight.detach().to(torch.float32).contiguous()
        y = _C.weighted_forward(xf, wf, size, stride, padding)
        ctx.save_for_backward(xf, wf, y)
        ctx.geometry, ctx.dtypes = (size, stride, padding), (x.dtype, weight.dtype)
        return y.to(x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        xf, wf, y = ctx.saved_tensors
        dx, dw = _C.weighted_backward(xf, wf, y, gy.to(torch.float32).contiguous(),
                                      *ctx.geometry)
        return dx.to(ctx.dtypes[0]), dw.to(ctx.dtypes[1]), None, None, None


def _int_at_least(value, lo, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValueError(f"convpool_torch: {what} must be an int >= {lo}, got {value!r}")
    return int(value)


def weighted_pool2d(x, weight, kernel_size, stride=None, padding=0):
    """Weighted pooling (the engine's weighted_pool op): each output is the mean of its
    window's valid (non-padding) values weighted by softmax(weight) over those positions.
    weight: (C or 1, 1, kernel_size, kernel_size) logits, per channel or shared; zeros are
    average pooling with padding not counted. Square windows of 1..8."""
    _check_input(x)
    size = _int_at_least(kernel_size, 1, "kernel_size")
    stride = size if stride is None else _int_at_least(stride, 1, "stride")
    padding = _int_at_least(padding, 0, "padding")
    if size > 8 or padding > size // 2:
        raise ValueError(f"convpool_torch: weighted pooling takes kernel_size 1..8 and padding "
                         f"at most half of it, got {size} and {padding}")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4 or weight.shape[1:] != (
            1, size, size) or weight.shape[0] not in (1, x.shape[1]):
        raise ValueError(f"convpool_torch: weight must be (C or 1, 1, {size}, {size}), got "
                         f"{tuple(weight.shape) if isinstance(weight, torch.Tensor) else weight!r}")
    if size > x.shape[2] + 2 * padding or size > x.shape[3] + 2 * padding:
        raise ValueError(f"convpool_torch: a {size}x{size} window is larger than the padded "
                         f"input {tuple(x.shape[2:])}")
    return WeightedPoolFunction.apply(x, weight, size, stride, padding)


class WeightedPool(nn.Module):
    """Weighted pooling (weighted_pool2d) with its logits as a parameter: one set of
    kernel_size x kernel_size per channel, or one for all with shared=True; zeros at the start
    (average pooling)."""

    def __init__(self, channels, kernel_size=2, stride=None, padding=0, shared=False):
        super().__init__()
        channels = _int_at_least(channels, 1, "channels")
        size = _int_at_least(kernel_size, 1, "kernel_size")
        self.kernel_size, self.stride, self.padding = size, stride, padding
        self.shared = bool(shared)
        self.weight = nn.Parameter(torch.zeros(1 if shared else channels, 1, size, size))

    def forward(self, x):
        return weighted_pool2d(x, self.weight, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return (f"channels={self.weight.shape[0]}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, shared={self.shared}")


class LipPoolFunction(torch.autograd.Function):
    """apply(x, gamma, size, stride, padding): local importance pooling on convpool's kernels."""

    @staticmethod
    def forward(ctx, x, gamma, size, stride, padding):
        xf = x.detach().to(torch.float32).contiguous()
        gf = gamma.detach().to(torch.float32).reshape(-1).contiguous()
        y = _C.lip_forward(xf, gf, size, stride, padding)
        ctx.save_for_backward(xf, gf, y)
        ctx.geometry = (size, stride, padding)
        ctx.dtypes, ctx.gamma_shape = (x.dtype, gamma.dtype), gamma.shape
        return y.to(x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        xf, gf, y = ctx.saved_tensors
        dx, dgamma = _C.lip_backward(xf, gf, y, gy.to(torch.float32).contiguous(), *ctx.geometry)
        return (dx.to(ctx.dtypes[0]), dgamma.reshape(ctx.gamma_shape).to(ctx.dtypes[1]), None,
                None, None)


def lip_pool2d(x, gamma, kernel_size, stride=None, padding=0):
    """Local importance pooling, light form (the engine's lip_pool op): each output is the mean
    of its window's valid values weighted by exp(gamma_c x), gamma one logit scale per channel
    (C values); gamma = 0 is average pooling without the padding, 1 is SoftPool. Square windows
    of 1..8."""
    _check_input(x)
    size = _int_at_least(kernel_size, 1, "kernel_size")
    stride = size if stride is None else _int_at_least(stride, 1, "stride")
    padding = _int_at_least(padding, 0, "padding")
    if size > 8 or padding > size // 2:
        raise ValueError(f"convpool_torch: local importance pooling takes kernel_size 1..8 and "
                         f"padding at most half of it, got {size} and {padding}")
    if not isinstance(gamma, torch.Tensor) or gamma.numel() != x.shape[1]:
        raise ValueError(f"convpool_torch: gamma must hold one scale per channel "
                         f"({x.shape[1]}), got "
                         f"{tuple(gamma.shape) if isinstance(gamma, torch.Tensor) else gamma!r}")
    if size > x.shape[2] + 2 * padding or size > x.shape[3] + 2 * padding:
        raise ValueError(f"convpool_torch: a {size}x{size} window is larger than the padded "
                         f"input {tuple(x.shape[2:])}")
    return LipPoolFunction.apply(x, gamma, size, stride, padding)


class LipPool(nn.Module):
    """Local importance pooling (lip_pool2d) with its per-channel logit scale as a parameter,
    zeros at the start (average pooling)."""

    def __init__(self, channels, kernel_size=2, stride=None, padding=0):
        super().__init__()
        channels = _int_at_least(channels, 1, "channels")
        self.kernel_size = _int_at_least(kernel_size, 1, "kernel_size")
        self.stride, self.padding = stride, padding
        self.logit_scale = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return lip_pool2d(x, self.logit_scale, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return (f"channels={self.logit_scale.numel()}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class _Pool(nn.Module):
    method = None

    def __init__(self, kernel_size=2, stride=None, padding=0, global_pool=False, **params):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.global_pool = global_pool
        self.params = params
        # Validate the parameters now (a dummy call on a window-sized input).
        if not global_pool:
            kh, kw = _pair(kernel_size, "kernel_size", 1)
            pool2d(torch.zeros(1, 1, kh, kw), self.method, kernel_size, stride, padding, **params)

    def _extra(self):
        return {}

    def forward(self, x):
        return pool2d(x, self.method, self.kernel_size, self.stride, self.padding,
                      global_pool=self.global_pool, training=self.training, **self.params,
                      **self._extra())

    def extra_repr(self):
        geom = "global" if self.global_pool else (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")
        return ", ".join([geom] + [f"{k}={v}" for k, v in self.params.items()])


class _Seeded(_Pool):
    """Methods with random draws: (seed, layer, step), step counting training calls."""

    def __init__(self, kernel_size=2, stride=None, padding=0, global_pool=False, seed=0, layer=0,
                 **params):
        super().__init__(kernel_size, stride, padding, global_pool, **params)
        self.seed, self.layer, self.step = int(seed), int(layer), 0

    def _extra(self):
        if self.training:
            self.step += 1
        return {"seed": self.seed, "layer": self.layer, "step": self.step}


class MaxPool(_Pool):
    method = "max"


class AvgPool(_Pool):
    method = "avg"

    def __init__(self, kernel_size=2, stride=None, padding=0, global_pool=False,
                 include_pad=True):
        super().__init__(kernel_size, stride, padding, global_pool, include_pad=include_pad)


class MinPool(_Pool):
    method = "min"


class LpPool(_Pool):
    method = "lp"

    def __init__(self, p=2.0, kernel_size=2, stride=None, padding=0, global_pool=False):
        super().__init__(kernel_size, stride, padding, global_pool, p=p)


class SoftPool(_Pool):
    method = "softpool"


class AvgTopK(_Pool):
    """Mean of the k largest values of each window (Avg-TopK)."""
    method = "avgtopk"

    def __init__(self, k=2, kernel_size=2, stride=None, padding=0, global_pool=False):
        super().__init__(kernel_size, stride, padding, global_pool, k=k)


class TMaxAvg(_Pool):
    """The window's max if it is >= t, else the mean of its k largest values."""
    method = "tmaxavg"

    def __init__(self, k=2, t=0.0, kernel_size=2, stride=None, padding=0, global_pool=False):
        super().__init__(kernel_size, stride, padding, global_pool, k=k, t=t)


class StochasticPool(_Seeded):
    """Training: samples x_i with probability max(x_i, 0) / sum (draws from seed, layer and a
    step counted per training call); evaluation: the expectation."""
    method = "stochastic"


class RankWeightedPool(_Pool):
    """Rank-weighted pooling (Shi, Ye and Wu 2016): the window's values sorted descending,
    weighted a (1 - a)^(r-1) for rank r, normalised over the window."""
    method = "rwp"

    def __init__(self, a=0.5, kernel_size=2, stride=None, padding=0, global_pool=False):
        super().__init__(kernel_size, stride, padding, global_pool, a=a)


class RankStochasticPool(_Seeded):
    """Rank-based stochastic pooling (Shi, Ye and Wu 2016): training draws the r-th largest
    value with probability a (1 - a)^(r-1) (normalised; a NaN surely); evaluation is
    RankWeightedPool."""
    method = "rsp"

    def __init__(self, a=0.5, kernel_size=2, stride=None, padding=0, global_pool=False, seed=0,
                 layer=0):
        super().__init__(kernel_size, stride, padding, global_pool, seed=seed, layer=layer, a=a)


class MixedPool(_Seeded):
    """lambda * max + (1 - lambda) * avg. learned=False: lambda in {0, 1} drawn per training
    call, 0.5 in evaluation; learned=True: lambda = sigmoid(alpha), alpha trained (starts 0)."""
    method = "mixed"

    def __init__(self, learned=False, kernel_size=2, stride=None, padding=0, global_pool=False,
                 seed=0, layer=0):
        super().__init__(kernel_size, stride, padding, global_pool, seed=seed, layer=layer)
        self.learned = learned
        self.alpha = nn.Parameter(torch.zeros(1)) if learned else None

    def _extra(self):
        extra = super()._extra()
        if self.learned:
            extra["alpha"] = self.alpha
        return extra


__all__ = ["METHODS", "methods", "pool2d", "PoolFunction", "built_with_cuda", "intermap_pool2d",
           "InterMapFunction", "InterMapPool", "PyramidPool", "weighted_pool2d",
           "WeightedPoolFunction", "WeightedPool", "lip_pool2d", "LipPoolFunction",
           "LipPool"] + [
    m["python_class"] for m in methods()]
