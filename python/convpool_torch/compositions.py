"""The pooling methods written as PyTorch compositions: what users write without convpool_torch,
the references of the equality tests (python/tests/test_convpool_torch.py) and the other side of the
benchmark (bench/bench-torch-ext). Windows without padding; any dtype; autograd as PyTorch's.
"""
import torch
import torch.nn.functional as F
from torch import nn


def _windows(x, size, stride):
    """(N, C, size*size, OH, OW) view of the windows, row-major within a window."""
    n, c, h, w = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    cols = F.unfold(x, size, stride=stride)  # N, C*size*size, OH*OW
    return cols.view(n, c, size * size, oh, ow)


def avgtopk(x, size, stride, k):
    """unfold + topk + mean: the usual Avg-TopK composition."""
    return _windows(x, size, stride).topk(k, dim=2).values.mean(dim=2)


def tmaxavg(x, size, stride, k, t):
    m = F.max_pool2d(x, size, stride)
    return torch.where(m >= t, m, avgtopk(x, size, stride, k))


def softpool(x, size, stride):
    """The SoftPool paper's formula, sum e^x x / sum e^x, via avg_pool2d (not max-shifted)."""
    e = x.exp()
    return F.avg_pool2d(e * x, size, stride) / F.avg_pool2d(e, size, stride)


def rank_weights(x, n, a):
    """The unnormalised rank weights a (1 - a)^r, r = 0..n-1, in x's dtype and device."""
    return a * (1 - a) ** torch.arange(n, dtype=x.dtype, device=x.device)


def rank_weighted(x, size, stride, a):
    """unfold + sort + rank weights a (1 - a)^r, normalised: rank-weighted pooling (rwp), and
    rsp in evaluation."""
    n = size * size
    w = rank_weights(x, n, a)
    w = w / w.sum()
    v = _windows(x, size, stride).sort(dim=2, descending=True).values
    return (v * w.view(1, 1, n, 1, 1)).sum(dim=2)


def intermap(x, groups, mode="max"):
    """Inter-map pooling: maps in groups of `groups` adjacent ones, max or mean at each
    position (view + amax / mean)."""
    n, c, h, w = x.shape
    v = x.view(n, c // groups, groups, h, w)
    return v.amax(dim=2) if mode == "max" else v.mean(dim=2)


def weighted(x, weight, size, stride=None, padding=0):
    """Weighted pooling: softmax(weight) over each window's valid positions, a depthwise
    conv2d of the softmax numerators over the same conv2d of the valid-position mask (what a
    PyTorch user would write; without padding the mask's sums are a constant per channel)."""
    stride = size if stride is None else stride
    c = x.shape[1]
    w = weight.expand(c, 1, size, size)
    e = torch.exp(w - w.amax(dim=(2, 3), keepdim=True))
    num = F.conv2d(x, e, stride=stride, padding=padding, groups=c)
    if padding == 0:
        return num / e.sum(dim=(2, 3)).view(1, c, 1, 1)
    ones = torch.ones(1, c, x.shape[2], x.shape[3], dtype=x.dtype, device=x.device)
    return num / F.conv2d(ones, e, stride=stride, padding=padding, groups=c)


def lip(x, gamma, size, stride=None, padding=0):
    """Local importance pooling as its paper writes it (lip2d): avg_pool2d of x exp(logit)
    over avg_pool2d of exp(logit), logit = gamma_c x (padding counts nothing: both sums take
    its zeros)."""
    stride = size if stride is None else stride
    w = torch.exp(gamma.view(1, -1, 1, 1) * x)
    return (F.avg_pool2d(x * w, size, stride, padding) /
            F.avg_pool2d(w, size, stride, padding))


def pyramid(x, sizes):
    """Per-pixel pyramid pooling: max_pool2d at stride 1, padding size // 2, per odd size,
    concatenated along channels."""
    return torch.cat([F.max_pool2d(x, s, 1, s // 2) for s in sizes], dim=1)


def gem(x, p, eps=1e-6):
    """Generalised-mean pooling (Radenovic et al.): (mean over the plane of max(x, eps)^p)^(1/p),
    p a learned tensor (one, or one per channel), as [N, C, 1, 1]."""
    e = p.view(1, -1, 1, 1)
    return x.clamp(min=eps).pow(e).mean((-2, -1), keepdim=True).pow(1.0 / e)


def attention(x, weight):
    """Attention pooling: each head's scores by a 1x1 convolution (weight [h, C, 1, 1]), a
    softmax over the positions, the maps' weighted sum: [N, h C, 1, 1], head by head."""
    n, c, h, w = x.shape
    a = F.conv2d(x, weight).flatten(2).softmax(-1)  # N, heads, HW
    return torch.bmm(a, x.flatten(2).transpose(1, 2)).reshape(n, -1, 1, 1)


def compact_bilinear(x, bins1, signs1, bins2, signs2, d, eps=1e-6):
    """Compact bilinear pooling, Tensor Sketch (Gao et al.), as PyTorch code writes it: each
    position's count sketches (index_add of the signed channels into d bins; bins and signs
    [C]), their circular convolution by rfft/irfft, summed over the positions; then the signed
    square root z / (sqrt(|z| + eps) + sqrt(eps)) and L2 normalisation: [N, d, 1, 1]."""
    n = x.shape[0]
    f = x.flatten(2).transpose(1, 2)  # N, HW, C

    def sketch(bins, signs):
        return torch.zeros(f.shape[:-1] + (d,), dtype=x.dtype, device=x.device).index_add_(-1, bins, f * signs)
    spectrum = torch.fft.rfft(sketch(bins1, signs1)) * torch.fft.rfft(sketch(bins2, signs2))
    z = torch.fft.irfft(spectrum, n=d).sum(1)
    y = z / (torch.sqrt(z.abs() + eps) + eps ** 0.5)
    return F.normalize(y, dim=1).view(n, d, 1, 1)


def spp(x, levels, mode="max"):
    """Spatial pyramid pooling: adaptive max (or average) pooling to L x L per level, each
    flattened channel-major, concatenated: [N, C sum L^2, 1, 1]."""
    pool = F.adaptive_max_pool2d if mode == "max" else F.adaptive_avg_pool2d
    n = x.shape[0]
    return torch.cat([pool(x, L).flatten(1) for L in levels], 1).view(n, -1, 1, 1)


def netvlad_spp(x, weight, bias, centres, levels):
    """NetVLAD on each cell of a spatial pyramid (multi-scale orderless pooling): soft
    assignment by a 1x1 convolution and a softmax over the K centres (weight [K, C], bias [K],
    centres [K, C]), each cell's residual sums as a bmm, then F.normalize per centre and over
    the cell's block; the cells concatenated: [N, K C sum L^2, 1, 1]."""
    n, c, h, w = x.shape
    a = F.conv2d(x, weight.view(-1, c, 1, 1), bias).softmax(1)  # N, K, H, W
    blocks = []
    for L in levels:
        for i in range(L):
            for j in range(L):
                rows = slice(i * h // L, -(-(i + 1) * h // L))
                cols = slice(j * w // L, -(-(j + 1) * w // L))
                xs, av = x[:, :, rows, cols].flatten(2), a[:, :, rows, cols].flatten(2)
                v = torch.bmm(av, xs.transpose(1, 2)) - av.sum(2, keepdim=True) * centres
                blocks.append(F.normalize(F.normalize(v, dim=2).flatten(1), dim=1))
    return torch.cat(blocks, 1).view(n, -1, 1, 1)


def _spectral_crop(spec, dim, i, o):
    """The o lowest frequencies of an i-point spectrum along dim, in o-point order; for an
    even o, its Nyquist frequency is the mean of the input's +o/2 and -o/2 (which fold there)."""
    def pick(ks):
        return spec.index_select(dim, torch.tensor([k % i for k in ks], device=spec.device))
    half = o // 2
    if o % 2:
        return pick(list(range(0, half + 1)) + list(range(-half, 0)))
    nyquist = (pick([half]) + pick([-half])) / 2
    return torch.cat([pick(range(0, half)), nyquist, pick(range(-half + 1, 0))], dim)


def spectral(x, h, w):
    """Spectral pooling (Rippel, Snoek and Adams, 2015) as a PyTorch user writes it: fft2,
    the h x w lowest frequencies kept, ifft2, the real part, scaled by hw / HW so that a
    constant plane keeps its value: [N, C, h, w]."""
    H, W = x.shape[-2:]
    spec = torch.fft.fft2(x)
    spec = _spectral_crop(_spectral_crop(spec, -2, H, h), -1, W, w)
    return torch.fft.ifft2(spec).real * (h * w / (H * W))


def lp(x, size, stride, p):
    """(sum |x|^p)^(1/p); F.lp_pool2d is the same for p = 2 (and for x >= 0)."""
    return (F.avg_pool2d(x.abs().pow(p), size, stride) * (size * size)).pow(1.0 / p)


def mixed(x, size, stride, lam):
    return lam * F.max_pool2d(x, size, stride) + (1 - lam) * F.avg_pool2d(x, size, stride)


def stochastic_eval(x, size, stride):
    """Evaluation-time stochastic pooling: sum relu(x)^2 / sum relu(x) (0 for all-zero)."""
    r = x.clamp(min=0)
    s = F.avg_pool2d(r, size, stride)
    q = F.avg_pool2d(r * r, size, stride)
    return torch.where(s > 0, q / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(s))


def minpool(x, size, stride):
    return -F.max_pool2d(-x, size, stride)


# Every method of the engine's table in its evaluation-mode form, called as
# f(x, size, stride, **params) with the table's parameter keys; a method missing here fails
# the extension's table test.
BY_METHOD = {
    "max": lambda x, size, stride: F.max_pool2d(x, size, stride),
    "avg": lambda x, size, stride, include_pad=True: F.avg_pool2d(x, size, stride),
    "min": minpool,
    "lp": lambda x, size, stride, p=2.0: lp(x, size, stride, p),
    "mixed": lambda x, size, stride, learned=False: mixed(x, size, stride, 0.5),
    "stochastic": stochastic_eval,
    "avgtopk": lambda x, size, stride, k=2: avgtopk(x, size, stride, k),
    "tmaxavg": lambda x, size, stride, k=2, t=0.0: tmaxavg(x, size, stride, k, t),
    "softpool": softpool,
    "rwp": lambda x, size, stride, a=0.5: rank_weighted(x, size, stride, a),
    "rsp": lambda x, size, stride, a=0.5: rank_weighted(x, size, stride, a),
}


class AvgTopKComposition(nn.Module):
    def __init__(self, k, kernel_size, stride=None):
        super().__init__()
        self.k, self.size, self.stride = k, kernel_size, stride or kernel_size

    def forward(self, x):
        return avgtopk(x, self.size, self.stride, self.k)


def tutorial_cnn(pool1, pool2, flat):
    """The Keras CIFAR-10 tutorial CNN (models/keras_cifar10.cfg) with the given pool modules;
    `flat` is the flattened size after pool2 (2304 for 2x2 pools, 256 for 3x3 stride 3)."""
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.ReLU(), pool1,
        nn.Conv2d(32, 64, 3), nn.ReLU(), pool2,
        nn.Flatten(), nn.Linear(flat, 64), nn.ReLU(), nn.Linear(64, 10))
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model
